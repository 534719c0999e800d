"""riskstream's shared package: settings, the AWS client factory, logging and the event contract."""

from riskstream.clients import make_client
from riskstream.settings import Settings, SettingsError

__version__ = "0.1.0"
__all__ = ["Settings", "SettingsError", "__version__", "make_client"]
