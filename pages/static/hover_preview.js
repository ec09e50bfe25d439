// Hover preview for the Embedding map (components v2, plain JS, no build step). It listens to the Plotly
// chart's own hover events in the page — no Streamlit rerun — and shows the image's thumbnail beside the
// pointer with its path, label → prediction and issue. The figure carries no text per point: a point's
// customdata is its row in the map's points, and everything shown comes from this component's data
// (pages/_hover.py: rows = {names, path, label, pred, issue, conf}, columns by row, codes into names).
// data = {version, rows?, thumbs?: [data URL], inline?: true, map?: URL, prefix?: URL prefix}:
// small maps (and large ones without static files) send rows (and thumbnails) once per session and map
// version (kept here per version; "inline" alone means "use what you kept", and if nothing was kept the
// component asks again with the "need" trigger); large maps give the URL of a JSON file {rows, thumbs:
// [thumbnail name]}, fetched once after the chart is drawn, and each thumbnail is fetched on hover from
// prefix + name (hidden until it exists).
// The box's data-item names the row shown, data-loaded the row whose image has loaded; the times from
// hover to image loaded (ms) collect in window.__hoverLatency (for the tests and bench/bench_clicks.py).
export default function (component) {
  const { data, setTriggerValue } = component;
  const W = window.__hoverPreview || (window.__hoverPreview = { kept: {}, asked: {}, box: null });
  const version = String((data && data.version) || "");
  W.version = version;
  W.prefix = (data && data.prefix) || "";
  if (data && data.rows) W.kept[version] = { rows: data.rows, thumbs: data.thumbs || [] };
  else if (data && data.inline && !W.kept[version] && !W.asked[version]) {
    W.asked[version] = true;  // once: a lost message or a reload, not a loop
    setTriggerValue("need", version);
  }
  // a large map's data is fetched once the chart has been drawn (attach below), off the load's critical path
  W.pending = data && data.map && !W.kept[version] ? { version, url: data.map } : null;
  const fetchMap = () => {
    const p = W.pending;
    if (!p || W.asked[p.version]) return;
    W.asked[p.version] = true;
    fetch(p.url).then((r) => (r.ok ? r.json() : Promise.reject(r.status))).then((doc) => {
      W.kept[p.version] = { rows: doc.rows, thumbs: (doc.thumbs || []).map((n) => (n ? W.prefix + n : "")) };
      if (W.box && W.box.style.display === "block" && W.version === p.version) fill(W.box.dataset.item, true);
    }).catch(() => { W.asked[p.version] = false; });
  };
  if (!W.box) {
    const box = document.createElement("div");
    box.className = "cleaning-hover-preview";
    box.setAttribute("role", "tooltip");
    Object.assign(box.style, { position: "fixed", zIndex: 10000, display: "none", pointerEvents: "none",
      background: "#fff", border: "1px solid #aab0ba", borderRadius: "6px", padding: "6px",
      boxShadow: "0 4px 14px rgba(0,0,0,.18)", font: "12px sans-serif", maxWidth: "200px" });
    box.innerHTML = '<img alt="" style="width:160px;height:160px;object-fit:contain;display:block;background:#fff">' +
      '<div class="hp-path" style="font-family:monospace;word-break:break-all;margin-top:4px"></div>' +
      '<div class="hp-label"></div>';
    document.body.appendChild(box);
    W.box = box;
    const img = box.querySelector("img");
    img.onload = () => {
      if (img.dataset.item !== box.dataset.item) return;
      box.dataset.loaded = img.dataset.item;
      (window.__hoverLatency = window.__hoverLatency || []).push(performance.now() - W.hoverAt);
    };
    img.onerror = () => { img.style.display = "none"; };  // not written yet: the text alone
  }
  // one row's lines: path; "label → prediction 93%" and the issue unless there is none
  const lines = (rows, i) => {
    const n = rows.names || [];
    const name = (col) => (rows[col] && rows[col][i] != null ? n[rows[col][i]] : undefined);
    const conf = rows.conf ? rows.conf[i] : -1;
    const pred = name("pred");
    const issue = name("issue");
    let label = name("label") || "";
    if (pred !== undefined) label += ` → ${pred}${conf >= 0 ? ` ${conf}%` : ""}`;
    return [rows.path[i], label, issue && issue !== "no issue" ? issue : ""].filter(Boolean);
  };
  const setSrc = (id, path, src) => {
    const img = W.box.querySelector("img");
    W.hoverAt = performance.now();
    delete W.box.dataset.loaded;
    img.dataset.item = id;
    if (src) { img.style.display = "block"; img.alt = path; img.src = src; }
    else { img.removeAttribute("src"); img.style.display = "none"; }
  };
  // show row `id` of the current map's data (or a placeholder until that data is here)
  const fill = (id, force) => {
    const kept = W.kept[W.version];
    const i = Number(id);
    const ls = kept && kept.rows && kept.rows.path && i < kept.rows.path.length ? lines(kept.rows, i) : ["…"];
    const src = (kept && kept.thumbs && kept.thumbs[i]) || "";
    if (force || W.box.dataset.item !== id || (src && !W.box.querySelector("img").getAttribute("src"))) {
      setSrc(id, ls[0], src);
    }
    W.box.querySelector(".hp-path").textContent = ls[0];
    W.box.querySelector(".hp-label").textContent = ls.slice(1).join(" · ");
    W.box.dataset.item = id;
  };
  const show = (ev) => {
    const pt = ev.points && ev.points[0];
    const cd = pt && (Array.isArray(pt.customdata) ? pt.customdata[0] : pt.customdata);
    if (cd == null || !pt.data) return;
    fill(String(cd), false);
    const e = ev.event || {};
    const x = (e.clientX || 0) + 18, y = (e.clientY || 0) + 18;
    W.box.style.left = `${Math.min(x, window.innerWidth - 215)}px`;
    W.box.style.top = `${Math.min(y, window.innerHeight - 230)}px`;
    W.box.style.display = "block";
  };
  const hide = () => { W.box.style.display = "none"; };
  const attach = () => {
    document.querySelectorAll(".js-plotly-plot").forEach((gd) => {
      if (gd._fullData && gd._fullData.some((t) => t.customdata && t.customdata.length)) fetchMap();
      if (gd.__hoverPreview || !gd.on || !(gd._fullData || []).some((t) => t.customdata && t.customdata.length)) return;
      gd.__hoverPreview = true;
      gd.on("plotly_hover", show);
      gd.on("plotly_unhover", hide);
      gd.on("plotly_click", hide);
    });
  };
  attach();
  clearInterval(W.timer);
  W.timer = setInterval(attach, 400);  // the chart is redrawn (a new element) after some reruns
  return () => { clearInterval(W.timer); hide(); };
}
