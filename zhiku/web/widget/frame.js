// The widget's chat, inside zhiku's iframe: asks /widget/v1/ask, shows cited answers.
const T = {
  "zh-TW": { send: "送出", placeholder: "請輸入問題…", sources: "出處", page: (p) => `第 ${p} 頁`,
    error: "抱歉，暫時無法回答，請稍後再試。", wait: "查詢中…", hello: "您好！請問想了解什麼？" },
  en: { send: "Send", placeholder: "Type your question…", sources: "Sources", page: (p) => `p. ${p}`,
    error: "Sorry, I cannot answer right now.", wait: "Looking it up…", hello: "Hello! What would you like to know?" },
};
const root = document.documentElement;
const t = T[root.lang] || T["zh-TW"];
const key = root.dataset.key;
const log = document.getElementById("log");
const input = document.getElementById("q");
document.getElementById("send").textContent = t.send;
input.placeholder = t.placeholder;

function session() {
  let s = sessionStorage.getItem("zhiku.widget.session");
  if (!s) {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    s = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    sessionStorage.setItem("zhiku.widget.session", s);
  }
  return s;
}
let conversation = sessionStorage.getItem("zhiku.widget.conversation") || null;

function say(cls, text) {
  const div = document.createElement("div");
  div.className = "msg " + cls;
  div.textContent = text;
  log.append(div);
  log.scrollTop = log.scrollHeight;
  return div;
}

function sources(div, answer) {
  const cites = answer.citations || [];
  if (!cites.length || answer.refused) return;
  const head = document.createElement("div");
  head.className = "sources-title";
  head.textContent = t.sources;
  const ol = document.createElement("ol");
  ol.className = "sources";
  for (const c of cites) {
    const li = document.createElement("li");
    let where = `《${c.doc || ""}》`;
    if (c.section) where += ` ${c.section}`;
    if (c.page) where += `，${t.page(c.page)}`;
    li.textContent = where;
    ol.append(li);
  }
  div.append(head, ol);
}

say("bot", t.hello);
document.getElementById("ask").addEventListener("submit", async (e) => {
  e.preventDefault();
  const question = input.value.trim();
  if (!question) return;
  input.value = "";
  say("user", question);
  const div = say("bot", t.wait);
  try {
    const res = await fetch("/widget/v1/ask", {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept-Language": root.lang },
      body: JSON.stringify({ key, question, session: session(), conversation_id: conversation }),
    });
    const body = await res.json();
    if (!res.ok) throw new Error((body.error && body.error.message) || res.status);
    conversation = body.conversation_id;
    if (conversation) sessionStorage.setItem("zhiku.widget.conversation", conversation);
    div.textContent = body.answer.answer;
    sources(div, body.answer);
  } catch (err) {
    div.textContent = err.message && !/^\d+$/.test(err.message) ? err.message : t.error;
    div.classList.add("error");
  }
});
