// zhiku website chat widget: <script src="https://zhiku.example/widget.js" data-key="zkw_…"
// data-lang="zh-TW|en" async></script>. Adds a button that opens zhiku's chat in an iframe.
(function () {
  const script = document.currentScript;
  if (!script || !script.dataset.key) return;
  const key = script.dataset.key;
  const lang = (script.dataset.lang || "zh-TW").toLowerCase().startsWith("en") ? "en" : "zh-TW";
  const base = new URL(script.src).origin;
  const q = "key=" + encodeURIComponent(key);
  fetch(base + "/widget/v1/config?" + q)
    .then((r) => {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    })
    .then(() => {
      const button = document.createElement("button");
      button.id = "zhiku-widget-button";
      button.type = "button";
      button.textContent = lang === "en" ? "Ask us" : "線上詢問";
      Object.assign(button.style, {
        position: "fixed", right: "20px", bottom: "20px", zIndex: "2147483000",
        padding: "12px 18px", borderRadius: "24px", border: "0", cursor: "pointer",
        background: "#1f6f5c", color: "#fff", font: "15px sans-serif",
        boxShadow: "0 2px 8px rgba(0,0,0,.25)",
      });
      const frame = document.createElement("iframe");
      frame.id = "zhiku-widget-frame";
      frame.title = lang === "en" ? "Chat" : "線上詢問";
      frame.src = base + "/widget/frame?" + q + "&lang=" + lang;
      Object.assign(frame.style, {
        position: "fixed", right: "20px", bottom: "76px", width: "min(380px, calc(100vw - 40px))",
        height: "min(560px, calc(100vh - 100px))", border: "1px solid #ccc", borderRadius: "12px",
        background: "#fff", zIndex: "2147483000", display: "none",
      });
      button.addEventListener("click", () => {
        frame.style.display = frame.style.display === "none" ? "block" : "none";
      });
      document.body.append(frame, button);
    })
    .catch((err) => console.warn("zhiku widget: this site may not use this key", err));
})();
