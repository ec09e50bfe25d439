// Keyboard review: a tiny Streamlit (components v2) component, plain JS, no build step.
// Keys: → / ← next / previous, Enter or f looks fine, d or Delete delete, a accept suggestion,
// 1–9 relabel to class n, u or Ctrl+Z undo. The next images are already in `data.items` (data URLs), so a
// key press shows the next image at once; decisions go to Python as a growing log (state value "log"),
// which records them in the store on the next script run (nothing is lost if keys come faster than runs).
export default function (component) {
  const { data, parentElement, setStateValue } = component;
  const root = parentElement;
  const S = root.__review || (root.__review = { pos: null, log: [], done: {}, lastSent: -1, handler: null });
  if (data.session !== S.session) {  // a new snapshot of the queue: start over
    Object.assign(S, { session: data.session, pos: data.pos || 0, log: [], done: {}, lastSent: -1 });
  }
  S.data = data;
  let view = root.querySelector(".rk");
  if (!view) {
    view = document.createElement("div");
    view.className = "rk";
    view.setAttribute("role", "application");
    view.setAttribute("aria-label", "Keyboard review");
    view.innerHTML = `
      <div class="rk-top"><span class="rk-count" aria-live="polite"></span><span class="rk-state"></span></div>
      <div class="rk-body">
        <figure class="rk-fig"><img class="rk-img" alt=""><figcaption class="rk-path"></figcaption></figure>
        <div class="rk-info"><div class="rk-label"></div><div class="rk-pred"></div><div class="rk-reason"></div>
          <ol class="rk-classes"></ol></div>
      </div>
      <p class="rk-keys">→ / ← next / previous · <b>Enter</b> or <b>f</b> looks fine · <b>d</b> or <b>Del</b> delete ·
        <b>a</b> accept suggestion · <b>1–9</b> relabel · <b>u</b> or <b>Ctrl+Z</b> undo</p>`;
    root.appendChild(view);
  }
  const $ = (c) => view.querySelector(c);
  const itemAt = (p) => { const i = p - data.offset; return i >= 0 && i < data.items.length ? data.items[i] : null; };
  // Each send starts a script run (and interrupts one in progress), so keys in quick succession are sent
  // together once the keyboard rests for a moment — or at once when the images sent ahead run low.
  const sendNow = () => { clearTimeout(S.timer); S.timer = null; S.lastSent = S.pos;
    setStateValue("log", { session: S.session, pos: S.pos, entries: S.log.slice() }); };
  const send = () => { clearTimeout(S.timer); S.timer = setTimeout(sendNow, data.debounce_ms); };
  const show = (t0) => {
    const it = itemAt(S.pos);
    $(".rk-count").textContent = `Image ${Math.min(S.pos + 1, data.total)} of ${data.total}`;
    if (!it) {
      $(".rk-img").removeAttribute("src");
      $(".rk-path").textContent = S.pos >= data.total ? "End of the queue: all reviewed." : "Loading…";
      view.dataset.item = "";
      return;
    }
    const img = $(".rk-img");
    img.src = it.src;
    img.alt = `${it.path}, labelled ${it.label}`;
    $(".rk-path").textContent = it.path;
    $(".rk-label").innerHTML = "";
    $(".rk-label").append("Label: ", Object.assign(document.createElement("b"), { textContent: it.label }));
    $(".rk-pred").textContent = it.pred ? `Prediction: ${it.pred}` + (it.sugg ? ` · suggested: ${it.sugg} (press a)` : "") : "";
    $(".rk-reason").textContent = it.reason || "";
    const d = S.done[it.id];
    $(".rk-state").textContent = d ? `✓ ${d}` : "";
    view.dataset.item = it.id;
    view.dataset.pos = String(S.pos);
    for (const q of [S.pos + 1, S.pos + 2]) {  // warm the decoder for the next images
      const nx = itemAt(q);
      if (nx && !nx.__warm) { nx.__warm = new Image(); nx.__warm.src = nx.src; nx.__warm.decode().catch(() => null); }
    }
    if (t0 !== undefined) {  // key press → image on screen, for the benchmark and the tests
      img.decode().catch(() => null).then(() => requestAnimationFrame(() => {
        (window.__reviewLatency = window.__reviewLatency || []).push(performance.now() - t0);
      }));
    }
  };
  const classes = $(".rk-classes");
  classes.innerHTML = "";
  data.classes.slice(0, 9).forEach((c, k) => {
    const li = document.createElement("li");
    li.textContent = `${k + 1} ${c}`;
    classes.appendChild(li);
  });
  const decide = (action, label, t0) => {
    const it = itemAt(S.pos);
    if (!it) return;
    if (action === "relabel" && (!label || label === it.label)) return;
    S.log.push({ n: S.log.length, id: it.id, action, label: label || null });
    S.done[it.id] = action === "relabel" ? `relabel → ${label}` : action === "keep" ? "looks fine" : action;
    S.pos = Math.min(S.pos + 1, data.total);
    show(t0);
    send();
  };
  const typing = (t) => !!t && (t.isContentEditable || t.tagName === "TEXTAREA" || t.tagName === "SELECT" ||
    t.getAttribute?.("role") === "combobox" ||
    (t.tagName === "INPUT" && !/^(checkbox|radio|button|submit|range|color|file)$/i.test(t.type || "")));
  const onKey = (e) => {
    const t = e.target;
    if (typing(t)) return;  // keys typed into a text box are not review keys
    if ((e.key === "Enter" || e.key === " ") && t && t.closest?.("button, a, [role=button]")) return;  // a focused button
    if (document.querySelector("[data-testid=stDialog]") && !root.closest?.("[data-testid=stDialog]")) return;
    const t0 = performance.now();
    const k = e.key;
    let handled = true;
    if (k === "ArrowRight") { S.pos = Math.min(S.pos + 1, data.total); show(t0); }
    else if (k === "ArrowLeft") { S.pos = Math.max(S.pos - 1, 0); show(t0); }
    else if (k === "Enter" || k === "f") decide("keep", null, t0);
    else if (k === "d" || k === "Delete") decide("delete", null, t0);
    else if (k === "a") { const it = itemAt(S.pos); if (it && it.sugg) decide("relabel", it.sugg, t0); }
    else if (/^[1-9]$/.test(k) && !e.ctrlKey && !e.metaKey) decide("relabel", data.classes[Number(k) - 1], t0);
    else if (k === "u" || ((e.ctrlKey || e.metaKey) && k.toLowerCase() === "z")) {
      const last = S.log.filter((x) => x.action !== "undo").length && S.log.slice().reverse().find(
        (x) => x.action !== "undo" && !x.undone);
      if (last) {
        last.undone = true;
        S.log.push({ n: S.log.length, id: last.id, action: "undo", label: null });
        delete S.done[last.id];
        const back = S.pos - 1;
        S.pos = back >= 0 ? back : 0;
        show(t0);
        send();
      }
    } else handled = false;
    if (handled) {
      e.preventDefault();
      e.stopPropagation();
      // ask Python for the next images before they are needed (they come with the next script run)
      const end = data.offset + data.items.length;
      if (S.pos >= end - data.refill_at && end < data.total && S.lastSent < end - data.refill_at) sendNow();
    }
  };
  if (S.handler) document.removeEventListener("keydown", S.handler, true);
  S.handler = onKey;
  document.addEventListener("keydown", onKey, true);
  show();
  return () => { document.removeEventListener("keydown", onKey, true); S.handler = null; };
}
