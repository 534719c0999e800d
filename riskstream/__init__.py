"""riskstream's foundation: settings, the AWS client factory, logging, the event contract, the
shared names (:mod:`riskstream.names`) and the one storage module (:mod:`riskstream.storage`).

It imports none of the other packages, and importing it loads neither boto3 nor pandas.
"""

from riskstream.settings import Settings, SettingsError

__version__ = "0.1.0"
__all__ = ["Settings", "SettingsError", "__version__"]
