"""The analyst dashboard: one HTML page (inline CSS, JS and SVG; no CDN) and a JSON endpoint.

``GET /`` serves the page, ``GET /api/summary`` the figures it draws (see
:mod:`serving.portfolio`), computed from the last two score partitions and every PSI report in
the scores bucket; the summary is cached for ``cache_seconds``. The page also shows, server-side
rendered, the registered model versions (champion first) with each one's fairness report
(approval rate and adverse impact ratio per group, flagged below 0.8) and a link to its model
card, ``GET /models/{version}/card`` (see :mod:`serving.modelview`); ``GET /api/models`` gives
the same as JSON. ``GET /health`` answers the service manager. Run it with
``riskstream dashboard up`` (127.0.0.1:8050).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from riskstream.settings import Settings
from serving import modelview, portfolio, storage

logger = logging.getLogger(__name__)


def load_summary(settings: Settings, lgd: float = 1.0) -> dict[str, Any] | None:
    """The dashboard's figures from S3, or None when no scoring run exists yet."""
    dates = storage.score_partitions(settings)
    if not dates:
        return None
    latest = storage.read_scores(settings, dates[-1]).to_pandas()
    previous = storage.read_scores(settings, dates[-2]).to_pandas() if len(dates) > 1 else None
    summary = portfolio.summary(
        latest,
        previous,
        storage.read_monitoring(settings),
        score_date=dates[-1].isoformat(),
        previous_date=dates[-2].isoformat() if len(dates) > 1 else None,
        lgd=lgd,
    )
    summary["portfolio"] = settings.portfolio  # every figure is this portfolio's only
    return summary


def create_app(settings: Settings, cache_seconds: float = 30.0, lgd: float = 1.0) -> FastAPI:
    app = FastAPI(title="riskstream dashboard", docs_url=None, redoc_url=None)
    lock = threading.Lock()
    cache: dict[str, Any] = {"at": 0.0, "value": None}

    def cached() -> dict[str, Any] | None:
        with lock:
            if cache["value"] is None or time.monotonic() - cache["at"] > cache_seconds:
                cache["value"] = load_summary(settings, lgd)
                cache["at"] = time.monotonic()
            return cache["value"]  # type: ignore[no-any-return]

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/summary")
    async def api_summary() -> JSONResponse:
        try:
            value = await run_in_threadpool(cached)
        except Exception as exc:  # show the analyst what is wrong instead of a blank page
            logger.exception("cannot read the scores")
            return JSONResponse(
                status_code=502, content={"detail": f"cannot read the scores: {exc}"}
            )
        if value is None:
            return JSONResponse(
                status_code=404,
                content={"detail": "no scores yet: run `riskstream score` first"},
            )
        return JSONResponse(value)

    models_cache: dict[str, Any] = {"at": 0.0, "value": None}

    def cached_models() -> list[dict[str, Any]]:
        with lock:
            fresh = time.monotonic() - models_cache["at"] <= cache_seconds
            if models_cache["value"] is None or not fresh:
                models_cache["value"] = modelview.registered_models(settings)
                models_cache["at"] = time.monotonic()
            return models_cache["value"]  # type: ignore[no-any-return]

    @app.get("/api/models")
    async def api_models() -> JSONResponse:
        try:
            value = await run_in_threadpool(cached_models)
        except Exception as exc:
            logger.exception("cannot read the model registry")
            return JSONResponse(
                status_code=502, content={"detail": f"cannot read the model registry: {exc}"}
            )
        return JSONResponse(value)

    @app.get("/models/{version}/card", response_class=PlainTextResponse)
    async def model_card(version: str) -> PlainTextResponse:
        try:
            text = await run_in_threadpool(modelview.model_card_text, settings, version)
        except modelview.ModelCardMissing as exc:
            return PlainTextResponse(str(exc), status_code=404)
        return PlainTextResponse(text, media_type="text/markdown; charset=utf-8")

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        try:
            section = modelview.models_html(await run_in_threadpool(cached_models))
        except Exception as exc:  # the portfolio figures still show when MLflow is down
            logger.warning("cannot read the model registry: %s", exc)
            section = modelview.models_html(None, error=str(exc))
        return PAGE.replace("<!--MODELS-->", section)

    return app


def app_from_env() -> FastAPI:
    """uvicorn factory (``serving.dashboard:app_from_env``): the entry point that reads settings."""
    import os

    from riskstream.logs import configure_logging

    configure_logging(os.environ.get("RISKSTREAM_LOG_LEVEL"))
    return create_app(Settings.from_env())


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>riskstream - portfolio risk</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f4f5f7;
      color:#1d2330}
 header{background:#1d2330;color:#fff;padding:14px 24px;display:flex;gap:24px;
        align-items:baseline}
 header h1{font-size:20px;margin:0} header span{opacity:.8;font-size:14px}
 main{padding:16px 24px;display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:16px}
 .kpis{grid-column:1/-1;display:grid;grid-template-columns:repeat(5,1fr);gap:12px}
 .card{background:#fff;border-radius:8px;padding:14px 16px;box-shadow:0 1px 2px #0002}
 .kpi .v{font-size:26px;font-weight:600;margin-top:4px} .kpi .l{font-size:13px;color:#5b6475}
 h2{font-size:15px;margin:0 0 10px} .wide{grid-column:1/-1}
 table{border-collapse:collapse;width:100%;font-size:13px}
 th,td{padding:5px 8px;border-bottom:1px solid #e3e6eb;text-align:left}
 th.sortable{cursor:pointer;user-select:none} th.sortable:hover{background:#eef1f5}
 td.num,th.num{text-align:right} .flag{color:#b42318;font-weight:600}
 #error{grid-column:1/-1;color:#b42318;display:none}
 svg text{font-size:11px;fill:#3b4352}
 .model h3{font-size:14px;margin:12px 0 4px} table.fairness{margin:6px 0 10px}
 table.fairness caption{text-align:left;font-weight:600;padding:4px 0}
</style></head>
<body>
<header><h1>Portfolio credit risk</h1><span id="meta">loading...</span></header>
<main>
 <div id="error" class="card"></div>
 <section class="kpis">
  <div class="card kpi"><div class="l">Accounts</div><div class="v" id="kpi-accounts">-</div></div>
  <div class="card kpi"><div class="l">Exposure</div><div class="v" id="kpi-exposure">-</div></div>
  <div class="card kpi"><div class="l">Expected loss (PD x EAD x LGD)</div>
   <div class="v" id="kpi-el">-</div></div>
  <div class="card kpi"><div class="l">Predicted default rate</div>
   <div class="v" id="kpi-pdr">-</div></div>
  <div class="card kpi"><div class="l">Observed default rate</div>
   <div class="v" id="kpi-odr">-</div></div>
 </section>
 <section class="card"><h2>Risk tiers</h2><svg id="tiers" width="100%" height="220"></svg></section>
 <section class="card"><h2>Score distribution (300-850)</h2>
  <svg id="hist" width="100%" height="220"></svg></section>
 <section class="card"><h2>Tier migration <span id="mig-dates"></span></h2>
  <div id="migration">needs two scoring runs</div></section>
 <section class="card"><h2>Population stability (PSI of the score; alert above 0.25)</h2>
  <svg id="psi" width="100%" height="220"></svg></section>
 <section class="card wide"><h2>Highest-risk accounts (click a header to sort)</h2>
  <table id="highrisk"><thead></thead><tbody></tbody></table></section>
 <!--MODELS-->
</main>
<script>
const TIER_COLORS={"Prime":"#2e7d32","Near-prime":"#9bbb3b","Subprime":"#f0a020",
                   "High risk":"#c62828"};
const fmtInt=n=>n==null?"n/a":Math.round(n).toLocaleString("en-US");
const fmtMoney=n=>{if(n==null)return "n/a";const a=Math.abs(n);
  if(a>=1e9)return (n/1e9).toFixed(2)+"B";if(a>=1e6)return (n/1e6).toFixed(2)+"M";
  if(a>=1e3)return (n/1e3).toFixed(1)+"k";return n.toFixed(0)};
const fmtPct=n=>n==null?"n/a":(100*n).toFixed(2)+"%";
const NS="http://www.w3.org/2000/svg";
function el(tag,attrs,text){const e=document.createElementNS(NS,tag);
  for(const k in attrs)e.setAttribute(k,attrs[k]);if(text!=null)e.textContent=text;return e}
function bars(svg,labels,values,colors,title){
  svg.innerHTML="";const W=svg.clientWidth||480,H=220,pad=30,n=values.length;
  const max=Math.max(1,...values),bw=(W-2*pad)/n;
  values.forEach((v,i)=>{const h=(H-2*pad)*v/max;
    const r=el("rect",{x:pad+i*bw+2,y:H-pad-h,width:Math.max(bw-4,1),height:h,
      fill:colors[i]||"#4a6fa5","class":"bar","data-value":v});
    r.appendChild(el("title",{},labels[i]+": "+v));svg.appendChild(r);
    if(n<=8){svg.appendChild(el("text",{x:pad+i*bw+bw/2,y:H-pad+14,"text-anchor":"middle"},
      labels[i]));svg.appendChild(el("text",{x:pad+i*bw+bw/2,y:H-pad-h-4,
      "text-anchor":"middle"},fmtInt(v)))}});
  if(n>8){[0,Math.floor(n/2),n-1].forEach(i=>svg.appendChild(el("text",{x:pad+i*bw,
    y:H-pad+14},labels[i])))}
}
function psiChart(svg,rows){
  svg.innerHTML="";const W=svg.clientWidth||480,H=220,pad=34;
  const pts=rows.filter(r=>r.psi_score!=null);
  if(!pts.length){svg.appendChild(el("text",{x:10,y:20},"no PSI reports yet"));return}
  const max=Math.max(0.3,...pts.map(r=>r.psi_score));
  const x=i=>pad+(pts.length==1?(W-2*pad)/2:i*(W-2*pad)/(pts.length-1));
  const y=v=>H-pad-(H-2*pad)*v/max;
  svg.appendChild(el("line",{x1:pad,x2:W-pad,y1:y(0.25),y2:y(0.25),stroke:"#c62828",
    "stroke-dasharray":"4 3"}));
  svg.appendChild(el("text",{x:W-pad-60,y:y(0.25)-4},"alert 0.25"));
  svg.appendChild(el("polyline",{points:pts.map((r,i)=>x(i)+","+y(r.psi_score)).join(" "),
    fill:"none",stroke:"#4a6fa5","stroke-width":2}));
  pts.forEach((r,i)=>{const c=el("circle",{cx:x(i),cy:y(r.psi_score),r:4,
    fill:r.flag?"#c62828":"#4a6fa5","class":"psi-point","data-psi":r.psi_score});
    c.appendChild(el("title",{},r.score_date+": PSI "+r.psi_score.toFixed(3)));
    svg.appendChild(c);svg.appendChild(el("text",{x:x(i),y:H-pad+14,"text-anchor":"middle"},
      r.score_date.slice(5)))});
}
function migrationTable(m,prev,now){
  const box=document.getElementById("migration");
  if(!m){box.textContent="needs two scoring runs";return}
  document.getElementById("mig-dates").textContent="("+prev+" to "+now+")";
  const max=Math.max(1,...m.matrix.flat());
  let h="<table id='migration-table'><tr><th>from \\\\ to</th>"+
    m.tiers.map(t=>"<th class='num'>"+t+"</th>").join("")+"</tr>";
  m.matrix.forEach((row,i)=>{h+="<tr><th>"+m.tiers[i]+"</th>"+row.map(v=>
    "<td class='num' style='background:rgba(74,111,165,"+(0.08+0.6*v/max)+")'>"+
    fmtInt(v)+"</td>").join("")+"</tr>"});
  h+="</table><p>"+fmtInt(m.accounts)+" accounts in both runs: "+fmtInt(m.downgraded)+
    " moved to a riskier tier, "+fmtInt(m.upgraded)+" to a safer one.</p>";
  box.innerHTML=h;
}
const COLS=[["account_id","Account",0],["score","Score",1],["pd","PD",1],["risk_tier","Tier",0],
  ["decision","Decision",0],["exposure","Exposure",1],["reason_1","Reason 1",0],
  ["reason_2","Reason 2",0],["reason_3","Reason 3",0]];
let sortKey="pd",sortDesc=true,rows=[];
function renderTable(){
  const t=document.getElementById("highrisk");
  t.tHead.innerHTML="<tr>"+COLS.map(([k,l,n])=>"<th class='sortable"+(n?" num":"")+
    "' data-key='"+k+"'>"+l+(k==sortKey?(sortDesc?" &#9660;":" &#9650;"):"")+"</th>")
    .join("")+"</tr>";
  const sorted=[...rows].sort((a,b)=>{const x=a[sortKey],y=b[sortKey];
    const c=(x==null)-(y==null)||(x<y?-1:x>y?1:0);return sortDesc?-c:c});
  t.tBodies[0].innerHTML=sorted.map(r=>"<tr>"+COLS.map(([k,l,n])=>{let v=r[k];
    if(k=="pd")v=fmtPct(v);else if(k=="exposure")v=fmtMoney(v);else if(v==null)v="";
    return "<td"+(n?" class='num'":"")+">"+String(v).replace(/</g,"&lt;")+"</td>"})
    .join("")+"</tr>").join("");
  t.tHead.querySelectorAll("th").forEach(th=>th.onclick=()=>{const k=th.dataset.key;
    if(k==sortKey)sortDesc=!sortDesc;else{sortKey=k;sortDesc=true}renderTable()});
}
async function load(){
  const r=await fetch("api/summary");const d=await r.json();
  if(!r.ok){const e=document.getElementById("error");e.style.display="block";
    e.textContent=d.detail;document.getElementById("meta").textContent="no data";return}
  document.getElementById("meta").textContent="portfolio "+d.portfolio+" - scores of "+
    d.score_date+" - model "+
    d.model.name+" v"+d.model.version;
  const k=d.kpis;
  document.getElementById("kpi-accounts").textContent=fmtInt(k.accounts);
  document.getElementById("kpi-exposure").textContent=fmtMoney(k.exposure);
  document.getElementById("kpi-el").textContent=fmtMoney(k.expected_loss);
  document.getElementById("kpi-pdr").textContent=fmtPct(k.predicted_default_rate);
  document.getElementById("kpi-odr").textContent=fmtPct(k.observed_default_rate);
  bars(document.getElementById("tiers"),d.tiers.map(t=>t.tier),d.tiers.map(t=>t.count),
    d.tiers.map(t=>TIER_COLORS[t.tier]));
  bars(document.getElementById("hist"),d.histogram.edges.slice(0,-1).map(String),
    d.histogram.counts,[]);
  migrationTable(d.migration,d.previous_date,d.score_date);
  psiChart(document.getElementById("psi"),d.psi);
  rows=d.high_risk;renderTable();
  document.body.dataset.loaded="true";
}
load().catch(e=>{const x=document.getElementById("error");x.style.display="block";
  x.textContent="cannot load the summary: "+e});
</script>
</body></html>
"""
