// Hover preview for the Embedding map (components v2, plain JS, no build step). It listens to the Plotly
// chart's own hover events in the page — no Streamlit rerun — and shows the image's thumbnail, path, label
// and prediction beside the pointer. data = {items: {item_id: [path, label, pred, thumb]}}; thumb is a data
// URL (small maps), a static-file URL fetched on hover (large maps; hidden until it exists) or "".
// The box's data-item names the point shown, data-loaded the point whose image has loaded; the times from
// hover to image loaded (ms) collect in window.__hoverLatency (for the tests and bench/bench_clicks.py).
export default function (component) {
  const { data } = component;
  const W = window.__hoverPreview || (window.__hoverPreview = { items: {}, box: null });
  W.items = data.items || {};
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
  const show = (ev) => {
    const pt = ev.points && ev.points[0];
    const id = pt && (Array.isArray(pt.customdata) ? pt.customdata[0] : pt.customdata);
    const it = id != null && W.items[String(id)];
    if (!it) return;
    const [path, label, pred, src] = it;
    const img = W.box.querySelector("img");
    if (W.box.dataset.item !== String(id)) {
      W.hoverAt = performance.now();
      delete W.box.dataset.loaded;
      img.dataset.item = String(id);
      if (src) { img.style.display = "block"; img.alt = `${path}, labelled ${label}`; img.src = src; }
      else { img.removeAttribute("src"); img.style.display = "none"; }
    }
    W.box.querySelector(".hp-path").textContent = path;
    W.box.querySelector(".hp-label").textContent = `label ${label} · predicted ${pred}`;
    W.box.dataset.item = String(id);
    const e = ev.event || {};
    const x = (e.clientX || 0) + 18, y = (e.clientY || 0) + 18;
    W.box.style.left = `${Math.min(x, window.innerWidth - 215)}px`;
    W.box.style.top = `${Math.min(y, window.innerHeight - 230)}px`;
    W.box.style.display = "block";
  };
  const hide = () => { W.box.style.display = "none"; };
  const attach = () => {
    document.querySelectorAll(".js-plotly-plot").forEach((gd) => {
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
