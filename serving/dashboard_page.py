"""The dashboard's two pages: HTML, CSS and the JS that asks the server for each view and draws it
with plotly.js (served by the dashboard itself from ``static/plotly.min.js``). The browser only
ever receives aggregates and at most one page of accounts, never the portfolio.

Every chart's ``div`` gets ``data-points`` (the data points it drew) once drawn, and the body
``data-loaded="true"`` once every view has answered, so a browser test knows when to look.
"""

from __future__ import annotations

_STYLE = """
<style>
 body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f4f5f7;
      color:#1d2330}
 header{background:#1d2330;color:#fff;padding:12px 24px;display:flex;gap:24px;
        align-items:baseline;flex-wrap:wrap}
 header h1{font-size:20px;margin:0} header span{opacity:.8;font-size:14px}
 header a{color:#cfe0ff}
 .filters{padding:10px 24px;background:#fff;border-bottom:1px solid #dde1e7;display:flex;
          gap:18px;align-items:center;flex-wrap:wrap;font-size:13px}
 main{padding:16px 24px;display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:16px}
 .kpis{grid-column:1/-1;display:grid;grid-template-columns:repeat(5,1fr);gap:12px}
 .card{background:#fff;border-radius:8px;padding:14px 16px;box-shadow:0 1px 2px #0002;
       min-width:0}
 .kpi .v{font-size:26px;font-weight:600;margin-top:4px} .kpi .l{font-size:13px;color:#5b6475}
 h2{font-size:15px;margin:0 0 10px;display:flex;gap:10px;align-items:baseline}
 h2 a.csv{font-size:12px;font-weight:400} .wide{grid-column:1/-1}
 .chart{height:300px}
 .scroll{max-height:360px;overflow:auto}
 table{border-collapse:collapse;width:100%;font-size:13px}
 th,td{padding:5px 8px;border-bottom:1px solid #e3e6eb;text-align:left}
 th.sortable{cursor:pointer;user-select:none} th.sortable:hover{background:#eef1f5}
 td.num,th.num{text-align:right} .flag{color:#b42318;font-weight:600}
 #error{grid-column:1/-1;color:#b42318;display:none}
 .model h3{font-size:14px;margin:12px 0 4px} table.fairness{margin:6px 0 10px}
 table.fairness caption{text-align:left;font-weight:600;padding:4px 0}
 details.model-card-inline pre{white-space:pre-wrap;background:#f7f8fa;padding:10px;
   max-height:320px;overflow:auto;font-size:12px}
 textarea{width:100%;font-family:ui-monospace,monospace;font-size:13px}
 .muted{color:#5b6475;font-size:13px}
</style>
"""

_COMMON_JS = """
const TIERS=["Prime","Near-prime","Subprime","High risk"];
const TIER_COLORS={"Prime":"#2e7d32","Near-prime":"#9bbb3b","Subprime":"#f0a020",
                   "High risk":"#c62828"};
const CONFIG={displaylogo:false,responsive:true};
const fmtInt=n=>n==null?"n/a":Math.round(n).toLocaleString("en-US");
const fmtMoney=n=>{if(n==null)return "n/a";const a=Math.abs(n);
  if(a>=1e9)return (n/1e9).toFixed(2)+"B";if(a>=1e6)return (n/1e6).toFixed(2)+"M";
  if(a>=1e3)return (n/1e3).toFixed(1)+"k";return n.toFixed(0)};
const fmtPct=n=>n==null?"n/a":(100*n).toFixed(2)+"%";
const esc=v=>String(v==null?"":v).replace(/&/g,"&amp;").replace(/</g,"&lt;");
function showError(msg){const e=document.getElementById("error");e.style.display="block";
  e.textContent=msg}
async function getJSON(url){const r=await fetch(url);const d=await r.json();
  if(!r.ok)throw new Error(d.detail||r.statusText);return d}
function records(v){return v.rows.map(r=>Object.fromEntries(v.columns.map((c,i)=>[c,r[i]])))}
function draw(id,traces,layout){const el=document.getElementById(id);
  const base={margin:{l:60,r:30,t:10,b:50},legend:{orientation:"h"},height:300};
  Plotly.react(el,traces,Object.assign(base,layout||{}),CONFIG);
  el.dataset.points=traces.reduce((n,t)=>n+((t.z?t.z.flat():t.y)||[]).length,0)}
const FORMATS={pd:fmtPct,mean_pd:fmtPct,old_pd:fmtPct,new_pd:fmtPct,predicted_default_rate:fmtPct,
  observed_default_rate:fmtPct,exposure:fmtMoney,expected_loss:fmtMoney,
  psi:v=>v==null?"":Number(v).toFixed(4)};
// a sortable table: columns [[key,label]], click a header to sort, numbers right-aligned
function table(id,columns,rows,link){
  const t=document.getElementById(id);const state=t._sort||{key:null,desc:true};t._sort=state;
  const render=()=>{
    const sorted=[...rows];
    if(state.key){sorted.sort((a,b)=>{const x=a[state.key],y=b[state.key];
      const c=(x==null)-(y==null)||(x<y?-1:x>y?1:0);return state.desc?-c:c})}
    t.innerHTML="<thead><tr>"+columns.map(([k,l])=>"<th class='sortable"+
      (typeof rows[0]?.[k]=="number"?" num":"")+"' data-key='"+k+"'>"+l+
      (k==state.key?(state.desc?" &#9660;":" &#9650;"):"")+"</th>").join("")+
      "</tr></thead><tbody>"+sorted.map(r=>"<tr>"+columns.map(([k])=>{const v=r[k];
        const f=FORMATS[k];let s=f&&typeof v=="number"?f(v):(Array.isArray(v)?
          v.map(x=>typeof x=="number"?x.toFixed(3):x).join(" "):esc(v));
        if(link&&link[k])s="<a href='"+link[k](r)+"'>"+s+"</a>";
        return "<td"+(typeof v=="number"?" class='num'":"")+">"+s+"</td>"}).join("")+
      "</tr>").join("")+"</tbody>";
    t.querySelectorAll("th").forEach(th=>th.onclick=()=>{const k=th.dataset.key;
      if(k==state.key)state.desc=!state.desc;else{state.key=k;state.desc=true}render()})};
  render()}
"""

MAIN_PAGE = (
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>riskstream - portfolio risk</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<script src="static/plotly.min.js"></script>"""
    + _STYLE
    + """</head>
<body>
<header><h1>Portfolio credit risk</h1><span id="meta">loading...</span></header>
<div class="filters">
 <span>Tiers: <span id="tier-filter"></span></span>
 <label>Utilisation <select id="util-filter"><option value="">all</option></select></label>
 <label>Months on book <select id="mob-filter"><option value="">all</option></select></label>
 <label>Scoring date <select id="date-filter"></select></label>
 <label>Migration from <select id="from-filter"></select></label>
 <label>Account <input id="account-search" placeholder="account id" size="18">
  <button id="account-go">open</button></label>
</div>
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
 <section class="card wide"><h2>Portfolio over time <a class="csv" data-view="overview">CSV</a>
  </h2><div id="chart-overview" class="chart"></div>
  <div class="scroll"><table id="overview-table"></table></div></section>
 <section class="card"><h2>Score distribution by tier
  <span id="dist-range" class="muted"></span>
  <a class="csv" data-view="distribution">CSV</a></h2>
  <div id="chart-distribution" class="chart"></div></section>
 <section class="card"><h2>Tier migration <span id="mig-dates" class="muted"></span>
  <a class="csv" data-view="migration">CSV</a></h2>
  <div id="chart-migration" class="chart"></div><p id="migration-note" class="muted"></p></section>
 <section class="card"><h2>Segments: tier x utilisation x months on book
  <a class="csv" data-view="segments">CSV</a></h2>
  <div id="chart-segments" class="chart"></div>
  <div class="scroll"><table id="segments-table"></table></div></section>
 <section class="card"><h2>Delinquency buckets per scoring date
  <a class="csv" data-view="delinquency">CSV</a></h2>
  <div id="chart-delinquency" class="chart"></div></section>
 <section class="card"><h2>Roll rates: last month but one to last month
  <a class="csv" data-view="roll_rates">CSV</a></h2>
  <div id="chart-roll-rates" class="chart"></div></section>
 <section class="card"><h2>Vintage: observed default rate by months on book per origination
  quarter <a class="csv" data-view="vintage">CSV</a></h2>
  <div id="chart-vintage" class="chart"></div></section>
 <section class="card wide"><h2>Live: the latest tier and decision changes
  <span id="live-lag" class="muted"></span></h2>
  <div class="scroll"><table id="live-changes"></table></div></section>
 <section class="card wide"><h2>Spend against its 3- and 6-month averages, and spend jumps
  <a class="csv" data-view="spend">CSV</a> <a class="csv" data-view="spend_jumps">jumps CSV</a>
  </h2><div id="chart-spend" class="chart"></div>
  <p class="muted">A jump: a month's spend at least 3 times the account's average over the 6
  months before (months without a purchase count as 0) and at least 100 above it, after 3 months
  of history.</p>
  <div class="scroll"><table id="spend-jumps"></table></div></section>
 <section class="card wide"><h2>Drift per input (PSI, with the score's; watch above 0.10,
  act above 0.25) <a class="csv" data-view="drift">CSV</a></h2>
  <div id="chart-drift" class="chart"></div>
  <div class="scroll"><table id="drift-table"></table></div></section>
 <section class="card wide"><h2>Highest-risk accounts (click a header to sort, an account to
  open it) <a class="csv" data-view="accounts">CSV</a></h2>
  <div class="scroll"><table id="highrisk"></table></div></section>
 <section class="card wide"><h2>Not computed yet</h2><ul id="not-computed"></ul></section>
 <section class="card wide"><h2>SQL (read-only, one SELECT; tables as in the catalog, with
  <code>scores</code> and <code>features</code> for this portfolio)</h2>
  <textarea id="sql-box" rows="3">select risk_tier, count(*) as accounts, avg(pd) as mean_pd
from scores group by 1 order by 3</textarea>
  <p><button id="sql-run">Run</button> <span id="sql-status" class="muted"></span></p>
  <div class="scroll"><table id="sql-result"></table></div></section>
 <!--MODELS-->
</main>
<script>"""
    + _COMMON_JS
    + """
let META=null;
function filters(){const p=new URLSearchParams();
  document.querySelectorAll("#tier-filter input:checked").forEach(c=>p.append("tier",c.value));
  return p}
function allTiers(){return document.querySelectorAll("#tier-filter input:checked").length==
  TIERS.length}
function viewURL(name,extra){const p=allTiers()?new URLSearchParams():filters();
  const seg={utilisation:document.getElementById("util-filter").value,
    mob:document.getElementById("mob-filter").value};
  for(const k in seg)if(seg[k])p.set(k,seg[k]);
  for(const k in extra||{})if(extra[k])p.set(k,extra[k]);
  return "api/views/"+name+(p.toString()?"?"+p:"")}
async function view(name,extra){
  const url=viewURL(name,extra);
  const a=document.querySelector("a.csv[data-view='"+name+"']");
  if(a)a.href=url.replace("api/views/"+name,"api/views/"+name+".csv");
  return getJSON(url)}
function setup(meta){
  META=meta;
  document.getElementById("tier-filter").innerHTML=meta.tiers.map(t=>
    "<label><input type='checkbox' value='"+esc(t)+"' checked> "+esc(t)+"</label> ").join("");
  const opts=meta.score_dates.slice().reverse().map(d=>"<option>"+d+"</option>").join("");
  document.getElementById("date-filter").innerHTML=opts;
  const from=document.getElementById("from-filter");
  from.innerHTML=meta.score_dates.slice().reverse().map(d=>"<option value='"+d+"'>"+d+
    "</option>"+(meta.replaced_runs[d]||[]).map(r=>"<option value='"+d+"|"+esc(r.replaced_at)+
    "'>"+d+", the run replaced at "+esc(runTime(r.replaced_at))+(r.model_version?
    " (model v"+esc(r.model_version)+")":"")+"</option>").join("")).join("");
  if(meta.score_dates.length>1)from.value=meta.score_dates[meta.score_dates.length-2];
  else if((meta.replaced_runs[meta.score_dates[0]]||[]).length)
    from.value=meta.score_dates[0]+"|"+meta.replaced_runs[meta.score_dates[0]][0].replaced_at;
  document.getElementById("not-computed").innerHTML=Object.entries(meta.not_computed).map(
    ([k,v])=>"<li data-view='"+k+"'><b>"+esc(k.replace("_"," "))+"</b>: not computed yet ("+
    esc(v)+")</li>").join("")||"<li>nothing: every view has what it needs</li>";
  for(const [id,key] of [["util-filter","utilisation"],["mob-filter","mob"]])
    document.getElementById(id).innerHTML+=meta.segments[key].map(b=>
      "<option>"+esc(b)+"</option>").join("");
  document.querySelectorAll(".filters input,.filters select").forEach(e=>{
    if(e.id!="account-search")e.onchange=()=>load().catch(x=>showError(x))});
  document.getElementById("account-go").onclick=()=>{const v=
    document.getElementById("account-search").value.trim();
    if(v)location.href="account?id="+encodeURIComponent(v)};
  document.getElementById("sql-run").onclick=runSQL;
}
async function runSQL(){
  const st=document.getElementById("sql-status");st.textContent="running...";
  const r=await fetch("api/sql",{method:"POST",headers:{"Content-Type":"application/json"},
    body:JSON.stringify({query:document.getElementById("sql-box").value,max_rows:500})});
  const d=await r.json();
  if(!r.ok){st.textContent=d.detail;document.getElementById("sql-result").innerHTML="";return}
  st.textContent=d.rows.length+" rows in "+d.ms+" ms"+(d.truncated?" (truncated)":"");
  table("sql-result",d.columns.map(c=>[c,c]),records(d));
}
function overview(v,day){
  const rs=records(v);const x=rs.map(r=>r.score_date);
  draw("chart-overview",[
    {type:"bar",name:"expected loss",x,y:rs.map(r=>r.expected_loss),marker:{color:"#9db4d6"}},
    {type:"scatter",mode:"lines+markers",name:"predicted default rate",x,
     y:rs.map(r=>r.predicted_default_rate),yaxis:"y2"},
    {type:"scatter",mode:"lines+markers",name:"observed default rate",x,
     y:rs.map(r=>r.observed_default_rate),yaxis:"y2"}],
    {yaxis:{title:{text:"expected loss"}},yaxis2:{title:{text:"default rate"},overlaying:"y",
     side:"right",tickformat:".1%"},xaxis:{type:"category"}});
  table("overview-table",[["score_date","Scoring date"],["accounts","Accounts"],
    ["exposure","Exposure"],["expected_loss","Expected loss"],
    ["predicted_default_rate","Predicted DR"],["observed_default_rate","Observed DR"],
    ["declines","Declines"]],rs);
  const k=rs.find(r=>r.score_date==day)||{};
  document.getElementById("kpi-accounts").textContent=fmtInt(k.accounts);
  document.getElementById("kpi-exposure").textContent=fmtMoney(k.exposure);
  document.getElementById("kpi-el").textContent=fmtMoney(k.expected_loss);
  document.getElementById("kpi-pdr").textContent=fmtPct(k.predicted_default_rate);
  document.getElementById("kpi-odr").textContent=fmtPct(k.observed_default_rate);
}
function distribution(v){
  const rs=records(v);const f=v.filters;const lo=f.scale[0],hi=f.scale[1];const bands=[];
  for(let b=lo;b<hi;b+=25)bands.push(b);
  const sr=f.score_range;document.getElementById("dist-range").textContent=sr?
    "(scores "+sr[0]+"-"+sr[2]+", median "+Math.round(sr[1])+", on the "+lo+"-"+hi+" scale)":
    "("+lo+"-"+hi+" scale)";
  const traces=TIERS.filter(t=>rs.some(r=>r.risk_tier==t)).map(t=>({type:"bar",name:t,
    x:bands.map(b=>b+12.5),width:24,marker:{color:TIER_COLORS[t]},
    y:bands.map(b=>(rs.find(r=>r.band_low==b&&r.risk_tier==t)||{accounts:0}).accounts)}));
  draw("chart-distribution",traces,{barmode:"stack",xaxis:{range:[lo,hi],
    title:{text:"score"},dtick:50},yaxis:{title:{text:"accounts"}}});
}
function runTime(stamp){return stamp.slice(0,4)+"-"+stamp.slice(4,6)+"-"+stamp.slice(6,8)+" "+
  stamp.slice(9,11)+":"+stamp.slice(11,13)+":"+stamp.slice(13,15)+" UTC"}
function migration(v){
  const rs=records(v);const f=v.filters;
  const fromLabel=f.from_run?f.from+" (the run replaced at "+runTime(f.from_run)+")":f.from;
  document.getElementById("mig-dates").textContent="("+fromLabel+" to "+f.to+")";
  const z=TIERS.map(a=>TIERS.map(b=>(rs.find(r=>r.from_tier==a&&r.to_tier==b)||
    {accounts:0}).accounts));
  draw("chart-migration",[{type:"heatmap",x:TIERS,y:TIERS,z,colorscale:[[0,"#f4f7fb"],[1,"#2f5b9a"]],
    texttemplate:"%{z}",hovertemplate:"%{y} to %{x}: %{z}<extra></extra>"}],
    {xaxis:{title:{text:"tier at "+f.to}},yaxis:{title:{text:"tier at "+fromLabel},
     autorange:"reversed"},margin:{l:90,r:30,t:10,b:50}});
  let down=0,up=0,n=0;TIERS.forEach((a,i)=>TIERS.forEach((b,j)=>{n+=z[i][j];
    if(j>i)down+=z[i][j];if(j<i)up+=z[i][j]}));
  document.getElementById("migration-note").textContent=f.from==f.to&&!f.from_run?
    "needs two scoring dates, or a rerun of one":fmtInt(n)+" accounts in both: "+fmtInt(down)+
    " moved to a riskier tier, "+fmtInt(up)+" to a safer one.";
}
function segments(v){
  const ORDER=["<30%","30-50%","50-80%","80-100%",">100%","unknown"];
  const rs=records(v);const bands=ORDER.filter(b=>rs.some(r=>r.utilisation_band==b));
  const traces=TIERS.filter(t=>rs.some(r=>r.risk_tier==t)).map(t=>({type:"bar",name:t,
    x:bands,marker:{color:TIER_COLORS[t]},y:bands.map(b=>rs.filter(r=>r.risk_tier==t&&
      r.utilisation_band==b).reduce((s,r)=>s+(r.exposure||0),0))}));
  draw("chart-segments",traces,{barmode:"stack",xaxis:{title:{text:"utilisation band"}},
    yaxis:{title:{text:"exposure"}}});
  table("segments-table",[["risk_tier","Tier"],["utilisation_band","Utilisation"],
    ["mob_band","Months on book"],["accounts","Accounts"],["mean_pd","Mean PD"],
    ["exposure","Exposure"]],rs);
}
function delinquency(v){
  const rs=records(v);const dates=[...new Set(rs.map(r=>r.score_date))];
  const order=["current","30","60","90+","unknown"];
  const colors={"current":"#2e7d32","30":"#f0c020","60":"#f08020","90+":"#c62828"};
  const traces=order.filter(b=>rs.some(r=>r.bucket==b)).map(b=>({type:"bar",
    name:b=="current"?b:b+" days",x:dates,marker:{color:colors[b]},
    y:dates.map(d=>(rs.find(r=>r.score_date==d&&r.bucket==b)||{accounts:0}).accounts)}));
  if(!traces.length){document.getElementById("chart-delinquency").textContent=
    "not computed yet: the features carry no repayment status";return}
  draw("chart-delinquency",traces,{barmode:"stack",xaxis:{type:"category"},
    yaxis:{title:{text:"accounts"}}});
}
function notYet(id,why){const el=document.getElementById(id);
  if(el.data)Plotly.purge(el);el.dataset.points=0;
  el.innerHTML="<p class='muted not-computed'>not computed yet: "+esc(why)+"</p>"}
function rollRates(v){
  const rs=records(v);if(!rs.length){notYet("chart-roll-rates",
    "the features carry no repayment status for the last two months");return}
  const B=[...new Set(rs.map(r=>r.from_bucket))];
  const z=B.map(a=>B.map(b=>(rs.find(r=>r.from_bucket==a&&r.to_bucket==b)||{}).rate??null));
  const n=B.map(a=>B.map(b=>(rs.find(r=>r.from_bucket==a&&r.to_bucket==b)||{}).accounts||0));
  draw("chart-roll-rates",[{type:"heatmap",x:B,y:B,z,customdata:n,zmin:0,zmax:1,
    colorscale:[[0,"#f4f7fb"],[1,"#b42318"]],texttemplate:"%{z:.0%}",
    hovertemplate:"%{y} to %{x}: %{z:.1%} (%{customdata} accounts)<extra></extra>"}],
    {xaxis:{title:{text:"bucket last month"}},yaxis:{title:{text:"bucket the month before"},
     autorange:"reversed"},margin:{l:90,r:30,t:10,b:50}});
}
function vintage(v){
  const rs=records(v);if(!rs.length){notYet("chart-vintage",
    "the features carry no months on book");return}
  const cohorts=[...new Set(rs.map(r=>r.cohort))];
  draw("chart-vintage",cohorts.map(c=>{const p=rs.filter(r=>r.cohort==c);
    return {type:"scatter",mode:"lines+markers",name:c,x:p.map(r=>r.months_on_book),
      y:p.map(r=>r.observed_default_rate)}}),
    {xaxis:{title:{text:"months on book"}},yaxis:{title:{text:"observed default rate"},
     tickformat:".0%"}});
}
function liveChanges(v){
  const lag=document.getElementById("live-lag");
  if(!v.running){lag.textContent="(no live scorer answers: riskstream live up)";
    table("live-changes",[],[]);return}
  const lags=Object.entries(v.lag_ms||{}).map(([s,ms])=>s+" "+(ms==null?"?":ms+" ms"));
  lag.textContent="(lag per shard: "+(lags.join(", ")||"no shard read yet")+"; "+
    v.events_per_second+" events/s; champion v"+v.champion_version+")";
  table("live-changes",[["event_time","Event time"],["account_id","Account"],
    ["changed","Changed"],["old_tier","Tier before"],["new_tier","Tier now"],
    ["old_pd","PD before"],["new_pd","PD now"],["decision","Decision"]],v.recent_changes,
    {account_id:r=>"account?id="+encodeURIComponent(r.account_id)});
}
function spend(v,jumps){
  const rs=records(v);if(!rs.length){notYet("chart-spend","no purchases in the catalog yet");
    table("spend-jumps",[],[]);return}
  const x=rs.map(r=>r.month);
  draw("chart-spend",[
    {type:"bar",name:"spend",x,y:rs.map(r=>r.spend),marker:{color:"#9db4d6"}},
    {type:"scatter",mode:"lines",name:"3-month average",x,y:rs.map(r=>r.avg_3m),
     line:{color:"#2e5c9a"}},
    {type:"scatter",mode:"lines",name:"6-month average",x,y:rs.map(r=>r.avg_6m),
     line:{color:"#f0a020",dash:"dash"}},
    {type:"scatter",mode:"markers",name:"accounts with a jump",x,y:rs.map(r=>r.jumps),
     yaxis:"y2",marker:{color:"#c62828",size:8}}],
    {yaxis:{title:{text:"spend"}},yaxis2:{title:{text:"jumps"},overlaying:"y",side:"right",
     rangemode:"tozero"}});
  table("spend-jumps",[["month","Month"],["account_id","Account"],["spend","Spend"],
    ["before_avg","Average of the 6 months before"],["ratio","Ratio"]],records(jumps),
    {account_id:r=>"account?id="+encodeURIComponent(r.account_id)});
}
function drift(v,day){
  const rs=records(v);const shown=rs.filter(r=>r.score_date==day);
  const rows=shown.length?shown:rs.filter(r=>r.score_date==rs[rs.length-1]?.score_date);
  if(!rows.length){document.getElementById("chart-drift").textContent=
    "no PSI report for this portfolio yet";table("drift-table",[],[]);return}
  draw("chart-drift",[{type:"bar",x:rows.map(r=>r.input),y:rows.map(r=>r.psi),
    marker:{color:rows.map(r=>r.flag?"#c62828":(r.psi>0.1?"#f0a020":"#4a6fa5"))},
    hovertemplate:"%{x}: PSI %{y:.4f}<extra></extra>"}],
    {shapes:[0.1,0.25].map(y=>({type:"line",xref:"paper",x0:0,x1:1,y0:y,y1:y,
      line:{dash:"dash",color:y>0.2?"#c62828":"#f0a020"}})),
     yaxis:{title:{text:"PSI on "+rows[0].score_date}}});
  table("drift-table",[["score_date","Scoring date"],["input","Input"],["psi","PSI"],
    ["flag","Flag"],["categories","Categories"],["expected","Expected shares"],
    ["actual","Actual shares"]],rows);
}
async function load(){
  const day=document.getElementById("date-filter").value;
  const [from,from_run]=document.getElementById("from-filter").value.split("|");
  document.body.dataset.loaded="false";
  const [ov,dist,mig,seg,delq,dr,acc,roll,vint,sp,jumps]=await Promise.all([view("overview"),
    view("distribution",{date:day}),view("migration",{from,from_run,to:day}),
    view("segments",{date:day}),view("delinquency"),view("drift"),
    view("accounts",{date:day}),view("roll_rates",{date:day}),view("vintage"),
    view("spend"),view("spend_jumps")]);
  liveChanges(await getJSON("api/live"));
  overview(ov,day);distribution(dist);migration(mig);segments(seg);delinquency(delq);
  drift(dr,day);rollRates(roll);vintage(vint);spend(sp,jumps);
  table("highrisk",[["account_id","Account"],["score","Score"],["pd","PD"],
    ["risk_tier","Tier"],["decision","Decision"],["exposure","Exposure"],
    ["reason_1","Reason 1"],["reason_2","Reason 2"],["reason_3","Reason 3"]],records(acc),
    {account_id:r=>"account?id="+encodeURIComponent(r.account_id)});
  document.body.dataset.loaded="true";
}
async function main(){
  const meta=await getJSON("api/meta");
  document.getElementById("meta").textContent="portfolio "+meta.portfolio+(meta.score_dates
    .length?" - scores of "+meta.score_dates[meta.score_dates.length-1]+" - model "+
    meta.model.name+" v"+meta.model.version:" - no scores yet");
  setup(meta);
  if(!meta.score_dates.length){showError("no scores yet: run `riskstream score` first");return}
  await load();
}
main().catch(e=>showError("cannot load the views: "+e.message));
</script>
</body></html>
"""
)

ACCOUNT_PAGE = (
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>riskstream - account</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<script src="static/plotly.min.js"></script>"""
    + _STYLE
    + """</head>
<body>
<header><h1>Account <span id="account-id"></span></h1><span id="meta"></span>
 <a href="./">back to the portfolio</a></header>
<main>
 <div id="error" class="card"></div>
 <section class="card wide"><h2>Score history <a class="csv" id="account-csv">CSV</a></h2>
  <div id="chart-account" class="chart"></div></section>
 <section class="card wide"><h2>Scores and reasons per scoring date</h2>
  <div class="scroll"><table id="account-table"></table></div></section>
 <section class="card wide"><h2>Events over time (curated) <a class="csv" id="events-csv">CSV</a>
  </h2><div id="chart-events" class="chart"></div>
  <div class="scroll"><table id="events-table"></table></div></section>
 <section class="card wide"><h2>Live score (every event rescored by the live scorer)</h2>
  <div id="live-score" class="muted">loading...</div></section>
</main>
<script>"""
    + _COMMON_JS
    + """
async function main(){
  const id=new URLSearchParams(location.search).get("id")||"";
  document.getElementById("account-id").textContent=id;
  const url="api/views/account?id="+encodeURIComponent(id);
  document.getElementById("account-csv").href="api/views/account.csv?id="+
    encodeURIComponent(id);
  const v=await getJSON(url);const rs=records(v);
  if(!rs.length){showError("no scores for account "+id);return}
  const last=rs[rs.length-1];
  document.getElementById("meta").textContent=last.risk_tier+" - score "+last.score+
    " - PD "+fmtPct(last.pd)+" - model "+last.model_name+" v"+last.model_version;
  const x=rs.map(r=>r.score_date);
  draw("chart-account",[{type:"scatter",mode:"lines+markers",name:"score",x,
    y:rs.map(r=>r.score),marker:{size:10,color:rs.map(r=>TIER_COLORS[r.risk_tier])}},
    {type:"scatter",mode:"lines+markers",name:"PD",x,y:rs.map(r=>r.pd),yaxis:"y2"}],
    {xaxis:{type:"category"},yaxis:{title:{text:"score"},range:[300,850]},
     yaxis2:{title:{text:"PD"},overlaying:"y",side:"right",tickformat:".0%",range:[0,1]}});
  table("account-table",[["score_date","Scoring date"],["score","Score"],["pd","PD"],
    ["risk_tier","Tier"],["decision","Decision"],["exposure","Exposure"],["label","Label"],
    ["reason_1","Reason 1"],["reason_2","Reason 2"],["reason_3","Reason 3"],
    ["model_version","Model version"]],rs);
  const evURL="api/views/events?id="+encodeURIComponent(id);
  document.getElementById("events-csv").href="api/views/events.csv?id="+encodeURIComponent(id);
  const ev=records(await getJSON(evURL));
  if(!ev.length){document.getElementById("chart-events").innerHTML=
    "<p class='muted'>no events of this account in the catalog's curated tables</p>"}
  else{const types=[...new Set(ev.map(e=>e.event_type))];
    draw("chart-events",types.map(t=>{const p=ev.filter(e=>e.event_type==t);
      return {type:"scatter",mode:"markers",name:t,x:p.map(e=>e.event_time),
        y:p.map(()=>t),text:p.map(e=>e.detail),hovertemplate:"%{x}<br>%{text}<extra></extra>"}}),
      {yaxis:{type:"category"},margin:{l:90,r:30,t:10,b:50}});
    table("events-table",[["event_time","Time"],["event_type","Type"],["detail","Detail"]],ev)}
  const live=(await getJSON("api/live/account?id="+encodeURIComponent(id))).live;
  document.getElementById("live-score").innerHTML=live?
    "<b>"+esc(live.score)+"</b> - "+esc(live.risk_tier)+" - PD "+fmtPct(live.pd)+" - "+
    esc(live.decision)+" - as of "+esc(live.as_of)+" (event "+esc(live.event_id)+
    ", model v"+esc(live.model_version)+")":
    "no live score: the live scorer has not scored this account (riskstream live up)";
  document.body.dataset.loaded="true";
}
main().catch(e=>showError("cannot load the account: "+e.message));
</script>
</body></html>
"""
)
