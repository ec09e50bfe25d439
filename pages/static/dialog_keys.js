// Single-key actions in the review dialog (components v2, plain JS, no build step): f or Enter looks fine,
// d or Delete delete, a accept the suggestion, 1–9 relabel to class n, r restore, u or Ctrl+Z undo,
// ← / → previous / next image of the list the dialog was opened from.
// Keys go to Python as a trigger value; Esc closes the dialog as usual. Typing in a text box, and Enter or
// Space on a focused button or link, keep their normal meaning.
export default function (component) {
  const { parentElement, setTriggerValue } = component;
  const W = parentElement.__dialogKeys || (parentElement.__dialogKeys = {});
  const native = (t) => !!t && (t.isContentEditable || /^(TEXTAREA|SELECT|INPUT)$/.test(t.tagName) ||
    t.getAttribute?.("role") === "combobox");
  const onKey = (e) => {
    if (!document.querySelector("[data-testid=stDialog]")) return;
    const t = e.target;
    if (native(t)) return;
    if ((e.key === "Enter" || e.key === " ") && t && t.closest?.("button, a, [role=button]")) return;
    let k = e.key;
    if ((e.ctrlKey || e.metaKey) && k.toLowerCase() === "z") k = "u";
    else if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (k === "Enter") k = "f";
    if (k === "Delete") k = "d";
    if (k === "ArrowLeft") k = "prev";
    if (k === "ArrowRight") k = "next";
    if (!/^([fdaru1-9]|prev|next)$/.test(k)) return;
    e.preventDefault();
    e.stopPropagation();
    setTriggerValue("key", { key: k, at: Date.now() });
  };
  if (!W.focused) {  // the dialog opens with the focus in its empty label box: give it to the dialog itself
    W.focused = true;
    setTimeout(() => {
      const dlg = document.querySelector("[data-testid=stDialog] [role=dialog]") ||
        document.querySelector("[data-testid=stDialog]");
      const a = document.activeElement;
      // (not when the user opened the box's list or typed into it: that focus is theirs)
      if (dlg && (!a || a === document.body || (dlg.contains(a) && native(a) && !a.value &&
          a.getAttribute("aria-expanded") !== "true"))) {
        if (a && a.blur) a.blur();
        if (!dlg.hasAttribute("tabindex")) dlg.setAttribute("tabindex", "-1");
        dlg.focus();
      }
    }, 60);
  }
  if (W.handler) document.removeEventListener("keydown", W.handler, true);
  W.handler = onKey;
  document.addEventListener("keydown", onKey, true);
  const host = document.querySelector("[data-testid=stDialog]");
  if (host) host.dataset.keys = "ready";  // for tests and assistive tools: single keys work now
  return () => { document.removeEventListener("keydown", onKey, true); W.handler = null; };
}
