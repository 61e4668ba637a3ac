// zhiku web UI: login, chat (streamed answers, citations, feedback, history),
// knowledge (upload, ingestion progress, documents) and administration.
// Plain ES modules, no build step, no CDN. Data is only ever rendered as text.

import { api, ApiError, clearKey, download, getKey, hasSession, setKey, stream, upload }
  from "./api.js";
import { $, append, fmtBytes, fmtTime, h, highlighted } from "./dom.js";
import { lang, setLang, t } from "./i18n.js";
import { icon } from "./icons.js";
import { conversationActions, followReplies, handoffButton, handoffOffer, renderAnalytics,
  renderInbox } from "./loop.js";

const app = {
  me: null,
  kbs: [],
  kb: localStorage.getItem("zhiku.kb") || "",
  conversation: null,
  polls: new Set(),
  renders: 0, // render() calls so far: only the latest marks the view as drawn
};

const view = () => $("#view");

// --- feedback to the user ---------------------------------------------------------------

function toast(message, kind = "info") {
  const el = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" },
    message);
  $("#toasts").append(el);
  setTimeout(() => el.remove(), kind === "error" ? 7000 : 3500);
}

function showError(err) {
  if (err instanceof ApiError) toast(err.status ? err.message : t("common.network"), "error");
  else toast(`${t("common.error")}: ${err && err.message ? err.message : err}`, "error");
}

function modal(build) {
  const dlg = $("#modal");
  dlg.replaceChildren();
  return new Promise((resolve) => {
    const close = (value) => {
      dlg.close();
      resolve(value);
    };
    append(dlg, build(close));
    dlg.onclose = () => resolve(undefined);
    dlg.showModal();
  });
}

function confirmDialog(message, okLabel = t("common.ok"), danger = true) {
  return modal((close) =>
    h("form", { method: "dialog", class: "modal-body", onsubmit: (e) => e.preventDefault() },
      h("p", { class: "modal-text" }, message),
      h("div", { class: "modal-actions" },
        h("button", { type: "button", class: "ghost", onclick: () => close(false) },
          t("common.cancel")),
        h("button", { type: "button", class: danger ? "danger" : "primary",
          "data-testid": "confirm-ok", onclick: () => close(true) }, okLabel))));
}

// --- shell ----------------------------------------------------------------------------------

function renderShell() {
  const bar = $("#topbar");
  bar.hidden = !app.me;
  document.title = t("app.title");
  $("#lang-toggle").textContent = t("lang.switch");
  $("#logout").textContent = t("logout");
  if (!app.me) return;
  $("#user-name").textContent = app.me.user;
  $("#user-role").textContent = t(`role.${app.me.role}`);
  const tabs = [["chat", t("nav.chat")], ["kb", t("nav.kb")]];
  if (app.agent || app.me.role === "admin") tabs.push(["inbox", t("nav.inbox")]);
  if (app.me.role !== "reader") tabs.push(["analytics", t("nav.analytics")]);
  if (app.me.role === "admin") tabs.push(["admin", t("nav.admin")]);
  const current = route();
  $("#tabs").replaceChildren(...tabs.map(([id, label]) =>
    h("a", { href: `#/${id}`, class: id === current ? "tab active" : "tab",
      "aria-current": id === current ? "page" : null, "data-testid": `tab-${id}` }, label)));
}

function route() {
  const r = (location.hash || "#/chat").replace(/^#\//, "").split("/")[0];
  return ["chat", "kb", "admin", "inbox", "analytics"].includes(r) ? r : "chat";
}

async function loadKbs() {
  app.kbs = (await api("GET", "/api/v1/kbs")).kbs;
  if (!app.kbs.some((k) => k.name === app.kb)) app.kb = app.kbs.length ? app.kbs[0].name : "";
  localStorage.setItem("zhiku.kb", app.kb);
}

function selectKb(name) {
  app.kb = name;
  app.conversation = null;
  localStorage.setItem("zhiku.kb", name);
}

function kbSelect(onChange, testid = "kb-select") {
  return h("select", { class: "kb-select", "data-testid": testid, "aria-label": t("kb.select"),
    onchange: (e) => { selectKb(e.target.value); onChange(); } },
    app.kbs.map((k) => h("option", { value: k.name, selected: k.name === app.kb }, k.name)));
}

async function render() {
  for (const stop of app.polls) stop();
  app.polls.clear();
  if (app.me && app.agent === undefined) {
    try {
      app.agent = (await api("GET", "/api/v1/me/departments")).departments.length > 0;
    } catch {
      app.agent = false;
    }
  }
  renderShell();
  if (!app.me) {
    renderLogin();
    return;
  }
  const r = route();
  const generation = ++app.renders;
  delete document.body.dataset.view;
  try {
    if (r === "admin" && app.me.role === "admin") await renderAdmin();
    else if (r === "inbox") await renderInbox(view(), showError, toast);
    else if (r === "analytics" && app.me.role !== "reader") {
      await loadKbs();
      await renderAnalytics(view(), { app, showError, toast, modal });
    }
    else if (r === "kb") await renderKnowledge();
    else await renderChat();
  } catch (err) {
    showError(err);
  }
  // Which view is drawn, once it is (the latest render only): what tests wait for.
  if (generation === app.renders) document.body.dataset.view = r;
}

// --- login ----------------------------------------------------------------------------------

async function signedIn() {
  app.me = await api("GET", "/api/v1/me");
  if (!location.hash || location.hash === "#") location.hash = "#/chat";
  await render();
}

async function renderLogin(error) {
  const failed = new URLSearchParams(location.search).get("signin_error");
  if (failed && !error) {
    history.replaceState(null, "", "/");
    const key = `login.err.${failed}`;
    error = t(key) === key ? `${t("login.ssoFailed")}（${failed}）` : t(key);
  }
  let config = { sso: false, ldap: false };
  try {
    config = await api("GET", "/api/v1/auth/config");
  } catch {
    // an older server: API keys only
  }
  const user = h("input", { type: "text", id: "login-user", name: "username", required: true,
    autocomplete: "username", spellcheck: "false", "data-testid": "login-user" });
  const pass = h("input", { type: "password", id: "login-password", name: "password",
    required: true, autocomplete: "current-password", "data-testid": "login-password" });
  const passwordForm = h("form", { class: "login-form", "data-testid": "password-form",
    onsubmit: async (e) => {
      e.preventDefault();
      clearKey();
      try {
        await api("POST", "/api/v1/auth/login", { username: user.value.trim(),
          password: pass.value });
        await signedIn();
      } catch (err) {
        const known = err instanceof ApiError && err.status !== 0 && err.status < 500;
        renderLogin(known || (err instanceof ApiError && err.code === "ldap_unavailable")
          ? err.message : t("common.network"));
      }
    } },
  h("label", { for: "login-user" }, t(config.ldap ? "login.userLdap" : "login.user")), user,
  h("label", { for: "login-password" }, t("login.password")), pass,
  h("button", { type: "submit", class: "primary wide", "data-testid": "signin-submit" },
    t("login.submit")));
  const sso = config.sso ? h("a", { class: "button ghost wide sso", "data-testid": "sso",
    href: `/api/v1/auth/oidc/start?next=${encodeURIComponent("/#/chat")}` }, t("login.sso"))
    : null;
  const input = h("input", { type: "password", id: "login-key", name: "key", required: true,
    autocomplete: "off", spellcheck: "false", "data-testid": "login-key",
    placeholder: "zk_…" });
  const remember = h("input", { type: "checkbox", id: "login-remember" });
  const keyForm = h("form", { class: "login-form", "data-testid": "login-form",
    onsubmit: async (e) => {
      e.preventDefault();
      setKey(input.value.trim(), remember.checked);
      try {
        await signedIn();
      } catch (err) {
        clearKey();
        renderLogin(err instanceof ApiError && err.status === 401 ? t("login.bad")
          : t("common.network"));
      }
    } },
  h("label", { for: "login-key" }, t("login.key")),
  input,
  h("label", { class: "check" }, remember, t("login.remember")),
  h("button", { type: "submit", class: "ghost wide", "data-testid": "login-submit" },
    t("login.keySubmit")),
  h("p", { class: "hint" }, t("login.hint")));
  const card = h("div", { class: "login-card" },
    h("img", { src: "/static/logo.svg", alt: "", width: 56, height: 56, class: "login-logo" }),
    h("h1", {}, t("login.title")),
    h("p", { class: "muted" }, t("login.lead")),
    error ? h("p", { class: "form-error", role: "alert" }, error) : null,
    passwordForm,
    sso,
    h("p", { class: "login-or" }, t("login.orKey")),
    keyForm,
    h("p", { class: "login-lang" },
      h("button", { type: "button", class: "linklike", onclick: () => {
        setLang(lang() === "en" ? "zh-TW" : "en");
        renderShell();
        renderLogin();
      } }, t("lang.switch"))));
  view().replaceChildren(h("section", { class: "login" }, card));
  user.focus();
}

// --- chat -------------------------------------------------------------------------------------

async function renderChat() {
  await loadKbs();
  if (!app.kbs.length) {
    view().replaceChildren(h("section", { class: "empty-page" }, h("p", {}, t("chat.noKb"))));
    return;
  }
  const history = h("ul", { class: "conv-list", "data-testid": "history" });
  const messages = h("div", { class: "messages", "data-testid": "messages",
    "aria-live": "polite" });
  const source = h("aside", { class: "source-panel", "data-testid": "source-panel", hidden: true });
  const question = h("textarea", { rows: 2, placeholder: t("chat.placeholder"),
    "data-testid": "question", maxlength: app.me.limits?.max_question_chars || 2000 });
  const send = h("button", { type: "submit", class: "primary", "data-testid": "ask" },
    t("chat.send"));
  const composer = h("form", { class: "composer", onsubmit: (e) => {
    e.preventDefault();
    ask();
  } }, question, send, handoffButton(() => app.conversation, () => followReplies(
    app.conversation, messages, app.polls)));
  question.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      ask();
    }
  });

  const emptyState = () => h("div", { class: "chat-empty" },
    h("img", { src: "/static/logo.svg", alt: "", width: 48, height: 48 }),
    h("h2", {}, t("chat.empty.title")),
    h("p", { class: "muted" }, t("chat.empty.lead")));

  async function refreshHistory() {
    const list = (await api("GET",
      `/api/v1/conversations?kb=${encodeURIComponent(app.kb)}&limit=50`)).conversations;
    history.replaceChildren(...(list.length ? list.map((c) => h("li", {},
      h("button", { type: "button", class: c.id === app.conversation ? "conv active" : "conv",
        title: c.title, onclick: () => openConversation(c.id) },
        h("span", { class: "conv-title" }, c.title || "…"),
        h("span", { class: "conv-time" }, fmtTime(c.updated_at, lang()))),
      conversationActions(c, refreshHistory, confirmDialog, (id) => {
        if (id === app.conversation) newConversation();
      }))) :
      [h("li", { class: "muted small" }, t("chat.noHistory"))]));
  }

  async function openConversation(id) {
    app.conversation = id;
    const conv = await api("GET", `/api/v1/conversations/${encodeURIComponent(id)}`);
    messages.replaceChildren(...conv.turns.map((turn) => {
      const el = turnView(turn.question);
      fillAnswer(el, turn.answer, turn.answer_id, turn.sources, turn.feedback);
      return el;
    }));
    if (!conv.turns.length) messages.replaceChildren(emptyState());
    followReplies(id, messages, app.polls);
    source.hidden = true;
    await refreshHistory();
    messages.scrollTop = messages.scrollHeight;
  }

  function newConversation() {
    app.conversation = null;
    messages.replaceChildren(emptyState());
    source.hidden = true;
    refreshHistory().catch(showError);
    question.focus();
  }

  async function ask() {
    const text = question.value.trim();
    if (!text || send.disabled) return;
    if (messages.querySelector(".chat-empty")) messages.replaceChildren();
    question.value = "";
    send.disabled = true;
    const el = turnView(text);
    messages.append(el);
    const body = $(".answer-text", el);
    body.classList.add("pending");
    body.textContent = t("chat.thinking");
    messages.scrollTop = messages.scrollHeight;
    let started = false;
    try {
      for await (const ev of stream(`/api/v1/kbs/${encodeURIComponent(app.kb)}/ask`,
        { question: text, conversation_id: app.conversation, stream: true })) {
        if (ev.type === "delta") {
          if (!started) {
            body.textContent = "";
            body.classList.remove("pending");
            started = true;
          }
          body.append(document.createTextNode(ev.text));
        } else if (ev.type === "done") {
          app.conversation = ev.conversation_id;
          fillAnswer(el, ev.answer, ev.answer_id, ev.sources, null);
          if (ev.handoff) followReplies(ev.conversation_id, messages, app.polls);
        } else if (ev.type === "error") {
          throw new ApiError(ev.error.status, ev);
        }
        messages.scrollTop = messages.scrollHeight;
      }
      await refreshHistory();
    } catch (err) {
      body.classList.remove("pending");
      body.classList.add("error-text");
      body.textContent = err.message || t("common.error");
      if (!(err instanceof ApiError)) showError(err);
    } finally {
      send.disabled = false;
      question.focus();
    }
  }

  function turnView(q) {
    return h("article", { class: "turn", "data-testid": "turn" },
      h("div", { class: "q" }, h("div", { class: "bubble" }, q)),
      h("div", { class: "a" },
        h("img", { class: "avatar", src: "/static/logo.svg", alt: "", width: 28, height: 28 }),
        h("div", { class: "a-body" },
          h("div", { class: "answer-text", "data-testid": "answer" }))));
  }

  function fillAnswer(el, answer, answerId, sources, feedback) {
    const body = $(".answer-text", el);
    body.classList.remove("pending");
    body.textContent = answer.answer;
    body.classList.toggle("refused", answer.refused);
    const wrap = $(".a-body", el);
    if (answer.citations.length) {
      wrap.append(h("div", { class: "citations", "data-testid": "citations" },
        h("span", { class: "citations-label" }, t("chat.sources")),
        answer.citations.map((c, i) => {
          const src = (sources || [])[i] || {};
          const where = [c.section ? c.section.split(" > ").pop() : null,
            c.page ? t("chat.page", { page: c.page }) : null].filter(Boolean).join(" · ");
          return h("button", { type: "button", class: "chip", "data-testid": "citation",
            title: c.doc, onclick: () => openSource(c, src) },
            h("span", { class: "chip-no" }, String(i + 1)),
            h("span", { class: "chip-doc" }, `《${c.doc}》`),
            where ? h("span", { class: "chip-where" }, where) : null);
        })));
    }
    if (answerId) wrap.append(feedbackView(answerId, feedback));
    if (answer.refused && answerId) wrap.append(offer("refused"));
  }

  function offer(reason) {
    return handoffOffer(() => app.conversation, () => followReplies(app.conversation, messages,
      app.polls), reason);
  }

  function feedbackView(answerId, feedback) {
    const status = h("span", { class: "fb-status", "data-testid": "feedback-status" });
    const comment = h("textarea", { rows: 2, placeholder: t("fb.comment"),
      "data-testid": "feedback-comment", maxlength: 4000 });
    let rating = feedback ? feedback.rating : null;
    const form = h("form", { class: "fb-form", hidden: true, onsubmit: async (e) => {
      e.preventDefault();
      await submit(rating, comment.value);
      form.hidden = true;
    } }, comment, h("button", { type: "submit", class: "primary small",
      "data-testid": "feedback-send" }, t("fb.send")));
    const up = h("button", { type: "button", class: "fb", "aria-label": t("fb.up"),
      title: t("fb.up"), "data-testid": "feedback-up", onclick: () => choose("up") },
    icon("up"));
    const down = h("button", { type: "button", class: "fb", "aria-label": t("fb.down"),
      title: t("fb.down"), "data-testid": "feedback-down", onclick: () => choose("down") },
    icon("down"));
    const mark = () => {
      up.setAttribute("aria-pressed", String(rating === "up"));
      down.setAttribute("aria-pressed", String(rating === "down"));
    };
    async function submit(value, text) {
      try {
        await api("POST", `/api/v1/answers/${encodeURIComponent(answerId)}/feedback`,
          { rating: value, comment: text || "" });
        status.textContent = t("fb.thanks");
      } catch (err) {
        showError(err);
      }
    }
    async function choose(value) {
      rating = value;
      mark();
      await submit(value, comment.value);
      if (value === "down" && !form.parentElement.querySelector(".handoff-offer")) {
        form.parentElement.append(offer("feedback"));
      }
      form.hidden = false;
      comment.focus();
    }
    mark();
    if (feedback && feedback.comment) comment.value = feedback.comment;
    return h("div", { class: "feedback" }, up, down, status, form);
  }

  async function openSource(citation, src) {
    source.hidden = false;
    source.replaceChildren(h("p", { class: "muted" }, t("src.loading")));
    try {
      if (!src.passage_id) throw new Error("no passage");
      const p = await api("GET", `/api/v1/passages/${encodeURIComponent(src.passage_id)}`);
      const meta = h("dl", { class: "src-meta" });
      if (p.section) append(meta, h("dt", {}, t("src.section")), h("dd", {}, p.section));
      if (p.page_start) {
        const pages = p.page_end && p.page_end !== p.page_start
          ? `${p.page_start}–${p.page_end}` : String(p.page_start);
        append(meta, h("dt", {}, t("src.page")), h("dd", { "data-testid": "source-page" }, pages));
      }
      append(meta, h("dt", {}, t("src.path")), h("dd", { class: "path" }, p.path));
      source.replaceChildren(
        h("header", { class: "src-head" },
          h("div", {}, h("div", { class: "eyebrow" }, t("src.title")),
            h("h3", { "data-testid": "source-title" }, p.doc)),
          h("button", { type: "button", class: "ghost icon", "aria-label": t("src.close"),
            "data-testid": "source-close", onclick: () => { source.hidden = true; } },
          icon("close"))),
        meta,
        h("div", { class: "src-text" },
          p.before ? h("p", { class: "context" }, p.before) : null,
          h("p", { class: "passage", "data-testid": "source-text" },
            highlighted(p.text, citation.text)),
          p.after ? h("p", { class: "context" }, p.after) : null));
    } catch (err) {
      source.replaceChildren(h("p", { class: "error-text" }, err.message));
    }
  }

  view().replaceChildren(h("section", { class: "chat" },
    h("aside", { class: "sidebar" },
      h("label", { class: "field-label" }, t("chat.kb")),
      kbSelect(() => newConversation()),
      h("button", { type: "button", class: "primary wide", "data-testid": "new-conversation",
        onclick: newConversation }, icon("plus"), t("chat.new")),
      h("h3", { class: "side-title" }, t("chat.history")),
      history),
    h("div", { class: "thread" }, messages, composer),
    source));
  if (app.conversation) await openConversation(app.conversation);
  else newConversation();
}

// --- knowledge ---------------------------------------------------------------------------------

async function renderKnowledge() {
  await loadKbs();
  const canEdit = app.me.role !== "reader";
  const isAdmin = app.me.role === "admin";
  const limits = app.me.limits || { max_upload_mb: 50, max_files: 20 };
  const jobsBox = h("div", { class: "jobs", "data-testid": "jobs" });
  const docsBox = h("div", { class: "docs" });
  const progress = h("div", { class: "upload-progress", hidden: true });

  const header = h("div", { class: "page-head" },
    h("div", { class: "head-left" },
      h("h1", {}, t("nav.kb")),
      app.kbs.length ? kbSelect(() => renderKnowledge().catch(showError), "kb-select-docs")
        : null),
    isAdmin ? h("form", { class: "inline-form", onsubmit: async (e) => {
      e.preventDefault();
      const input = e.target.elements.kbname;
      try {
        const kb = await api("POST", "/api/v1/kbs", { name: input.value.trim() });
        selectKb(kb.name);
        toast(t("kb.created", { kb: kb.name }));
        await renderKnowledge();
      } catch (err) {
        showError(err);
      }
    } },
    h("input", { name: "kbname", required: true, maxlength: 64, placeholder: t("kb.newName"),
      "data-testid": "new-kb-name" }),
    h("button", { type: "submit", class: "primary", "data-testid": "create-kb" },
      t("kb.create"))) : null);

  if (!app.kbs.length) {
    view().replaceChildren(h("section", { class: "knowledge" }, header,
      h("p", { class: "empty-page" }, t("chat.noKb"))));
    return;
  }

  const fileInput = h("input", { type: "file", multiple: true, hidden: true,
    "data-testid": "file-input", onchange: (e) => send([...e.target.files]) });
  const folderInput = h("input", { type: "file", multiple: true, hidden: true,
    webkitdirectory: true, "data-testid": "folder-input",
    onchange: (e) => send([...e.target.files]) });
  const drop = h("div", { class: "dropzone", tabindex: 0, "data-testid": "dropzone",
    role: "button", onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") fileInput.click(); },
    ondragover: (e) => { e.preventDefault(); drop.classList.add("over"); },
    ondragleave: () => drop.classList.remove("over"),
    ondrop: (e) => { e.preventDefault(); drop.classList.remove("over");
      send([...e.dataTransfer.files]); } },
  h("div", { class: "drop-icon" }, icon("upload", 30)),
  h("p", {}, t("kb.drop"), " ",
    h("button", { type: "button", class: "linklike", onclick: () => fileInput.click() },
      t("kb.choose")), " ",
    h("button", { type: "button", class: "linklike", "data-testid": "choose-folder",
      onclick: () => folderInput.click() }, t("kb.chooseFolder"))),
  h("p", { class: "muted small" },
    t("kb.dropHint", { mb: limits.max_upload_mb, n: limits.max_files })),
  fileInput, folderInput, progress);

  async function send(files) {
    if (!files.length) return;
    progress.hidden = false;
    progress.textContent = t("kb.uploading", { pct: 0 });
    // More files than one request takes: several uploads of max_files each, one job each.
    const size = Math.max(1, limits.max_files);
    const batches = [];
    for (let i = 0; i < files.length; i += size) batches.push(files.slice(i, i + size));
    try {
      for (const [b, batch] of batches.entries()) {
        const job = await upload(`/api/v1/kbs/${encodeURIComponent(app.kb)}/documents`, batch,
          (f) => { progress.textContent = t("kb.uploading",
            { pct: Math.round(((b + f) / batches.length) * 100) }); });
        jobsBox.prepend(jobCard(job));
        jobsBox.querySelector(".jobs-empty")?.remove();
        follow(job.id);
      }
      progress.hidden = true;
      fileInput.value = "";
      folderInput.value = "";
    } catch (err) {
      progress.hidden = true;
      showError(err);
    }
  }

  function follow(jobId) {
    let stopped = false;
    const stop = () => { stopped = true; };
    app.polls.add(stop);
    const tick = async () => {
      if (stopped) return;
      try {
        const job = await api("GET", `/api/v1/jobs/${encodeURIComponent(jobId)}`);
        const old = jobsBox.querySelector(`[data-job="${CSS.escape(jobId)}"]`);
        const card = jobCard(job);
        if (old) old.replaceWith(card);
        if (job.status === "done" || job.status === "failed") {
          app.polls.delete(stop);
          await refreshDocs();
          return;
        }
      } catch (err) {
        showError(err);
        return;
      }
      setTimeout(tick, 600);
    };
    setTimeout(tick, 300);
  }

  function jobCard(job) {
    const pct = job.total ? Math.round((job.done / job.total) * 100) : 100;
    return h("div", { class: `job ${job.status}`, dataset: { job: job.id },
      "data-testid": "job" },
    h("div", { class: "job-head" },
      h("span", { class: `badge ${job.status}` }, t(`status.${job.status}`)),
      h("span", { class: "job-count" }, t("kb.job", { done: job.done, total: job.total }),
        job.failed ? h("span", { class: "badge failed job-failed" },
          t("kb.jobFailed", { n: job.failed })) : null),
      h("span", { class: "muted small" }, fmtTime(job.created_at, lang()))),
    h("progress", { class: "bar", max: 100, value: pct, "aria-label": t("kb.jobs") }),
    h("ul", { class: "job-files" }, job.files.map((f) => h("li", { class: `jf ${f.status}`,
      "data-testid": "job-file" },
    h("span", { class: `badge ${f.status}` }, t(`status.${f.status}`)),
    h("span", { class: "jf-name" }, f.name),
    f.size ? h("span", { class: "muted small" }, fmtBytes(f.size)) : null,
    f.message ? h("span", { class: "jf-error", "data-testid": "file-error" },
      f.reason ? `${f.message}（${f.reason}）` : f.message) : null))));
  }

  async function refreshJobs() {
    const { jobs } = await api("GET", `/api/v1/kbs/${encodeURIComponent(app.kb)}/jobs`);
    jobsBox.replaceChildren(...(jobs.length ? jobs.slice(0, 5).map(jobCard)
      : [h("p", { class: "muted jobs-empty" }, t("kb.noJobs"))]));
    for (const j of jobs) if (j.status === "queued" || j.status === "running") follow(j.id);
  }

  let levels = null; // the confidentiality scale, fetched once for the label editor

  function accessText(meta) {
    const groups = Array.isArray(meta.access_groups) ? meta.access_groups : [];
    const rank = Number.isInteger(meta.access_level) ? meta.access_level : 0;
    const name = levels && levels[rank] ? levels[rank].name : String(rank);
    return `${groups.length ? groups.join("、") : t("kb.access.everyone")}・${name}`;
  }

  // The access labels of one document: groups (comma-separated; empty: everyone who
  // reads the KB) and a level, saved with PATCH .../documents/{id} (docs/admins/access.md).
  function accessEditor(d) {
    const groups = h("input", { type: "text", "data-testid": "access-groups",
      value: (Array.isArray(d.meta.access_groups) ? d.meta.access_groups : []).join(","),
      placeholder: t("kb.access.groupsHint"), "aria-label": t("kb.access.groups") });
    const current = Number.isInteger(d.meta.access_level) ? d.meta.access_level : 0;
    const level = h("select", { "data-testid": "access-level", "aria-label": t("kb.access.level") },
      (levels || []).map((l) => h("option", { value: String(l.rank),
        selected: l.rank === current ? "selected" : null }, l.name)));
    const row = h("tr", { class: "access-editor", "data-testid": "access-editor" },
      h("td", { colspan: "7" }, h("div", { class: "actions" },
        h("label", {}, t("kb.access.groups"), " ", groups),
        h("label", {}, t("kb.access.level"), " ", level),
        h("button", { type: "button", class: "small", "data-testid": "access-save",
          onclick: async () => {
            const names = groups.value.split(/[,，;；]/).map((g) => g.trim()).filter(Boolean);
            try {
              await api("PATCH", `/api/v1/kbs/${encodeURIComponent(app.kb)}` +
                `/documents/${encodeURIComponent(d.id)}`, { meta: {
                  access_groups: names.length ? names : null,
                  access_level: level.value } }); // a rank as text: the API takes names or ranks
              toast(t("kb.access.saved", { title: d.title }));
              await refreshDocs();
            } catch (err) {
              showError(err);
            }
          } }, t("kb.access.save")),
        h("button", { type: "button", class: "ghost small", onclick: () => row.remove() },
          t("kb.access.cancel")))));
    return row;
  }

  async function refreshDocs() {
    const { documents } = await api("GET",
      `/api/v1/kbs/${encodeURIComponent(app.kb)}/documents`);
    if (!documents.length) {
      docsBox.replaceChildren(h("p", { class: "muted" }, t("kb.noDocs")));
      return;
    }
    if (levels === null) {
      try {
        levels = (await api("GET", "/api/v1/admin/access/levels")).levels;
      } catch (err) {
        levels = [];
      }
    }
    docsBox.replaceChildren(h("table", { class: "table", "data-testid": "documents" },
      h("thead", {}, h("tr", {},
        ["title", "kind", "chunks", "size", "updated", "access"].map((c) =>
          h("th", { class: c === "chunks" || c === "size" ? "num" : null }, t(`kb.col.${c}`))),
        canEdit ? h("th", {}, t("kb.col.actions")) : null)),
      h("tbody", {}, documents.map((d) => h("tr", { "data-testid": "document" },
        h("td", { class: "doc-title" }, d.title, h("div", { class: "muted small path" }, d.path)),
        h("td", {}, h("span", { class: "kind" }, d.kind)),
        h("td", { class: "num" }, String(d.chunks)),
        h("td", { class: "num" }, fmtBytes(d.size)),
        h("td", {}, fmtTime(d.updated_at, lang())),
        h("td", { "data-testid": "doc-access" }, accessText(d.meta || {})),
        canEdit ? h("td", {}, h("div", { class: "actions" },
          h("button", { type: "button", class: "ghost small", "data-testid": "edit-access",
            onclick: (ev) => {
              const tr = ev.target.closest("tr");
              if (tr.nextSibling && tr.nextSibling.classList.contains("access-editor")) return;
              tr.after(accessEditor({ ...d, meta: d.meta || {} }));
            } }, t("kb.access")),
          h("button", { type: "button", class: "ghost small", onclick: async () => {
            try {
              const job = await api("POST", `/api/v1/kbs/${encodeURIComponent(app.kb)}` +
                `/documents/${encodeURIComponent(d.id)}/reingest`);
              jobsBox.prepend(jobCard(job));
              follow(job.id);
            } catch (err) {
              showError(err);
            }
          } }, t("kb.reingest")),
          h("button", { type: "button", class: "ghost small danger-text", onclick: async () => {
            if (!(await confirmDialog(t("kb.removeConfirm", { title: d.title }),
              t("kb.remove")))) return;
            try {
              await api("DELETE", `/api/v1/kbs/${encodeURIComponent(app.kb)}` +
                `/documents/${encodeURIComponent(d.id)}`);
              toast(t("kb.removed", { title: d.title }));
              await refreshDocs();
            } catch (err) {
              showError(err);
            }
          } }, t("kb.remove")))) : null)))));
  }

  const deleteKb = isAdmin ? h("button", { type: "button", class: "ghost small danger-text",
    onclick: async () => {
      const name = app.kb;
      if (!(await confirmDialog(t("kb.deleteConfirm", { kb: name }), t("kb.delete")))) return;
      try {
        await api("DELETE", `/api/v1/kbs/${encodeURIComponent(name)}`);
        toast(t("kb.deleted", { kb: name }));
        selectKb("");
        await renderKnowledge();
      } catch (err) {
        showError(err);
      }
    } }, t("kb.delete")) : null;

  view().replaceChildren(h("section", { class: "knowledge" }, header,
    canEdit ? drop : h("p", { class: "notice" }, t("kb.readOnly")),
    h("div", { class: "grid-2" },
      h("div", { class: "card" }, h("h2", {}, t("kb.jobs")), jobsBox),
      h("div", { class: "card wide" },
        h("div", { class: "card-head" }, h("h2", {}, t("kb.docs")), deleteKb), docsBox))));
  await Promise.all([refreshJobs(), refreshDocs()]);
}

// --- admin ---------------------------------------------------------------------------------------

async function renderAdmin() {
  await loadKbs();
  const [{ users }, { keys }, { entries }, { sources }, { groups }] = await Promise.all([
    api("GET", "/api/v1/users"), api("GET", "/api/v1/keys"),
    api("GET", "/api/v1/audit?limit=50"), api("GET", "/api/v1/sources"),
    api("GET", "/api/v1/groups")]);
  const kbNames = app.kbs.map((k) => k.name);
  const rerender = () => renderAdmin().catch(showError);

  async function act(fn, message) {
    try {
      await fn();
      if (message) toast(message);
      rerender();
    } catch (err) {
      showError(err);
      rerender();
    }
  }

  async function newKey(user) {
    const label = await modal((close) => {
      const input = h("input", { name: "label", maxlength: 100, value: "web",
        "data-testid": "key-label" });
      return h("form", { class: "modal-body", onsubmit: (e) => {
        e.preventDefault();
        close(input.value);
      } },
      h("h2", {}, `${t("admin.newKey")} — ${user.name}`),
      h("label", {}, t("admin.keyLabel")), input,
      h("div", { class: "modal-actions" },
        h("button", { type: "button", class: "ghost", onclick: () => close(undefined) },
          t("common.cancel")),
        h("button", { type: "submit", class: "primary", "data-testid": "key-create" },
          t("admin.newKey"))));
    });
    if (label === undefined) return;
    try {
      const created = await api("POST", "/api/v1/keys", { user: user.id, name: label });
      await modal((close) => {
        const field = h("input", { readonly: true, value: created.key, class: "mono",
          "data-testid": "new-key" });
        return h("div", { class: "modal-body" },
          h("h2", {}, t("admin.keyTitle")),
          h("p", { class: "warning" }, t("admin.keyOnce")),
          field,
          h("div", { class: "modal-actions" },
            h("button", { type: "button", class: "ghost", onclick: async (e) => {
              field.select();
              try {
                await navigator.clipboard.writeText(created.key);
              } catch {
                document.execCommand("copy");
              }
              e.target.textContent = t("admin.copied");
            } }, t("admin.copy")),
            h("button", { type: "button", class: "primary", onclick: () => close(true) },
              t("common.close"))));
      });
      rerender();
    } catch (err) {
      showError(err);
    }
  }

  async function setPassword(user) {
    const password = await modal((close) => {
      const input = h("input", { type: "password", name: "password", minlength: 10,
        required: true, autocomplete: "new-password", "data-testid": "new-password" });
      return h("form", { class: "modal-body", onsubmit: (e) => {
        e.preventDefault();
        close(input.value);
      } },
      h("h2", {}, `${t("admin.setPassword")} — ${user.name}`),
      h("label", {}, t("admin.passwordHint")), input,
      h("div", { class: "modal-actions" },
        h("button", { type: "button", class: "ghost", onclick: () => close(undefined) },
          t("common.cancel")),
        h("button", { type: "submit", class: "primary", "data-testid": "password-save" },
          t("admin.setPassword"))));
    });
    if (password === undefined) return;
    act(() => api("PUT", `/api/v1/users/${user.id}/password`, { password }),
      t("admin.passwordSet", { name: user.name }));
  }

  // Groups (docs/admins/signin.md): a group maps to a role and KB grants; directory (LDAP/OIDC)
  // groups appear here after their first member signs in, and are mapped the same way.
  const roleOptions = (selected) => [h("option", { value: "", selected: !selected },
    t("admin.noRole")), ...["reader", "editor", "admin"].map((r) =>
    h("option", { value: r, selected: r === selected }, t(`role.${r}`)))];
  const saveGroup = (g, change) => act(() => api("PUT",
    `/api/v1/groups/${encodeURIComponent(g.name)}`, { role: g.role, kbs: g.kbs,
      description: g.description, ...change }), t("admin.saved"));
  const groupName = h("input", { name: "group", required: true, maxlength: 200,
    placeholder: t("admin.groupName"), "data-testid": "group-name" });
  const groupRole = h("select", { name: "role", "data-testid": "group-role",
    "aria-label": t("admin.role") }, roleOptions(""));
  const groupKbs = kbNames.map((n) => h("label", { class: "check" },
    h("input", { type: "checkbox", value: n }), n));
  const createGroup = h("form", { class: "create-user", onsubmit: (e) => {
    e.preventDefault();
    const kbs = groupKbs.map((l) => l.firstChild).filter((c) => c.checked).map((c) => c.value);
    act(() => api("PUT", `/api/v1/groups/${encodeURIComponent(groupName.value.trim())}`,
      { role: groupRole.value || null, kbs }), t("admin.saved"));
  } }, groupName, groupRole, h("div", { class: "checks" }, groupKbs),
  h("button", { type: "submit", class: "primary", "data-testid": "create-group" },
    t("admin.createGroup")));
  const groupsTable = h("table", { class: "table", "data-testid": "groups" },
    h("thead", {}, h("tr", {}, ["groupName", "role", "kbs", "members", "actions"].map((c) =>
      h("th", {}, t(`admin.${c}`))))),
    h("tbody", {}, groups.map((g) => h("tr", { "data-group": g.name },
      h("td", { class: "strong" }, g.name),
      h("td", {}, h("select", { "aria-label": t("admin.role"), "data-testid": "group-role-edit",
        onchange: (e) => saveGroup(g, { role: e.target.value || null }) }, roleOptions(g.role))),
      h("td", {}, h("div", { class: "checks" }, kbNames.map((n) => h("label", { class: "check" },
        h("input", { type: "checkbox", checked: g.kbs.includes(n), onchange: (e) => saveGroup(g,
          { kbs: e.target.checked ? [...g.kbs, n] : g.kbs.filter((x) => x !== n) }) }), n)))),
      h("td", { class: "small" }, g.members.join("、") || "—"),
      h("td", {}, h("button", { type: "button", class: "ghost small danger-text",
        onclick: async () => {
          if (await confirmDialog(t("admin.deleteGroup", { name: g.name }), t("admin.delete"))) {
            act(() => api("DELETE", `/api/v1/groups/${encodeURIComponent(g.name)}`));
          }
        } }, t("admin.delete")))))));

  const nameInput = h("input", { name: "name", required: true, maxlength: 64,
    placeholder: t("admin.name"), "data-testid": "user-name" });
  const roleInput = h("select", { name: "role", "data-testid": "user-role" },
    ["reader", "editor", "admin"].map((r) => h("option", { value: r }, t(`role.${r}`))));
  const kbChecks = kbNames.map((n) => h("label", { class: "check" },
    h("input", { type: "checkbox", value: n }), n));
  const createUser = h("form", { class: "create-user", onsubmit: (e) => {
    e.preventDefault();
    const kbs = kbChecks.map((l) => l.firstChild).filter((c) => c.checked).map((c) => c.value);
    act(() => api("POST", "/api/v1/users", { name: nameInput.value.trim(),
      role: roleInput.value, kbs }), t("admin.userCreated", { name: nameInput.value.trim() }));
  } }, nameInput, roleInput, h("div", { class: "checks" }, kbChecks),
  h("button", { type: "submit", class: "primary", "data-testid": "create-user" },
    t("admin.createUser")));

  const usersTable = h("table", { class: "table", "data-testid": "users" },
    h("thead", {}, h("tr", {}, ["name", "role", "kbs", "groups", "status", "actions"].map((c) =>
      h("th", {}, t(`admin.${c}`))))),
    h("tbody", {}, users.map((u) => h("tr", { "data-user": u.name },
      h("td", { class: "strong" }, u.name),
      h("td", {}, h("select", { "aria-label": t("admin.role"), onchange: (e) =>
        act(() => api("PATCH", `/api/v1/users/${u.id}`, { role: e.target.value }),
          t("admin.saved")) },
      ["reader", "editor", "admin"].map((r) =>
        h("option", { value: r, selected: r === u.role }, t(`role.${r}`))))),
      h("td", {}, u.role === "admin" ? h("span", { class: "muted" }, t("admin.allKbs"))
        : h("div", { class: "checks" }, kbNames.map((n) => h("label", { class: "check" },
          h("input", { type: "checkbox", checked: u.kbs.includes(n), onchange: (e) => {
            const next = e.target.checked ? [...u.kbs, n] : u.kbs.filter((x) => x !== n);
            act(() => api("PUT", `/api/v1/users/${u.id}/grants`, { kbs: next }),
              t("admin.saved"));
          } }), n)))),
      h("td", {}, h("input", { class: "groups-input", "data-testid": "user-groups",
        "aria-label": t("admin.groups"), placeholder: t("admin.groupsHint"),
        // The groups an administrator set (a directory's come back at each sign-in).
        value: groups.filter((g) => g.local_members.includes(u.name)).map((g) => g.name)
          .join(", "),
        onchange: (e) => act(() => api("PUT", `/api/v1/users/${u.id}/groups`,
          { groups: e.target.value.split(/[,，、]/).map((x) => x.trim()).filter(Boolean) }),
        t("admin.saved")) })),
      h("td", {}, h("span", { class: `badge ${u.disabled ? "failed" : "done"}` },
        u.disabled ? t("admin.disabled") : t("admin.enabled"))),
      h("td", {}, h("div", { class: "actions" },
        h("button", { type: "button", class: "ghost small", onclick: () => newKey(u) },
          t("admin.newKey")),
        h("button", { type: "button", class: "ghost small", "data-testid": "set-password",
          onclick: () => setPassword(u) }, t("admin.setPassword")),
        h("button", { type: "button", class: "ghost small", onclick: () =>
          act(() => api("POST", `/api/v1/users/${u.id}/sessions/revoke`),
            t("admin.signedOut", { name: u.name })) }, t("admin.signOutAll")),
        h("button", { type: "button", class: "ghost small", onclick: () =>
          act(() => api("PATCH", `/api/v1/users/${u.id}`, { disabled: !u.disabled }),
            t("admin.saved")) }, u.disabled ? t("admin.enable") : t("admin.disable")),
        h("button", { type: "button", class: "ghost small danger-text", onclick: async () => {
          if (await confirmDialog(t("admin.deleteUser", { name: u.name }), t("admin.delete"))) {
            act(() => api("DELETE", `/api/v1/users/${u.id}`));
          }
        } }, t("admin.delete"))))))));

  const keysTable = h("table", { class: "table", "data-testid": "keys" },
    h("thead", {}, h("tr", {}, ["prefix", "user", "label", "created", "lastUsed", "status",
      "actions"].map((c) => h("th", {}, t(`admin.${c}`))))),
    h("tbody", {}, keys.map((k) => h("tr", {},
      h("td", { class: "mono" }, k.prefix),
      h("td", {}, k.user),
      h("td", {}, k.name || "—"),
      h("td", {}, fmtTime(k.created_at, lang())),
      h("td", {}, fmtTime(k.last_used_at, lang())),
      h("td", {}, h("span", { class: `badge ${k.active ? "done" : "failed"}` },
        k.active ? t("admin.active") : t("admin.revoked"))),
      h("td", {}, k.active ? h("button", { type: "button", class: "ghost small danger-text",
        onclick: async () => {
          if (await confirmDialog(t("admin.revokeConfirm", { prefix: k.prefix }),
            t("admin.revoke"))) act(() => api("DELETE", `/api/v1/keys/${k.id}`));
        } }, t("admin.revoke")) : null)))));

  // Sources (docs/sources.md): register a folder or a web site, see the last run, sync now.
  const srcKb = h("select", { name: "kb", "aria-label": t("admin.kb"),
    "data-testid": "source-kb" }, kbNames.map((n) => h("option", { value: n }, n)));
  const srcName = h("input", { name: "name", required: true, maxlength: 64,
    placeholder: t("admin.name"), "data-testid": "source-name" });
  const srcTarget = h("input", { name: "target", required: true,
    placeholder: t("src.target"), "data-testid": "source-target" });
  const srcEvery = h("input", { name: "every", value: "1d", size: 6,
    "aria-label": t("src.everyHint"), title: t("src.everyHint"),
    "data-testid": "source-every" });
  const createSource = h("form", { class: "create-user", onsubmit: (e) => {
    e.preventDefault();
    act(() => api("POST", `/api/v1/kbs/${encodeURIComponent(srcKb.value)}/sources`, {
      name: srcName.value.trim(), target: srcTarget.value.trim(), every: srcEvery.value.trim(),
    }), t("src.created", { name: srcName.value.trim() }));
  } }, srcKb, srcName, srcTarget, srcEvery,
  h("button", { type: "submit", class: "primary", "data-testid": "create-source" },
    t("src.add")));
  const srcBadge = (st) => ({ ok: "done", running: "running" })[st] || (st ? "failed" : "pending");
  const sourcesTable = h("table", { class: "table", "data-testid": "sources" },
    h("thead", {}, h("tr", {}, ["kb", "name", "target", "every", "last", "status", "counts",
      "actions"].map((c) => h("th", {}, t(`src.${c}`))))),
    h("tbody", {}, sources.map((s) => h("tr", {},
      h("td", {}, s.kb),
      h("td", {}, s.name),
      h("td", { class: "mono detail" }, s.target),
      h("td", {}, s.every || t("src.manual")),
      h("td", { class: "nowrap" }, fmtTime(s.last_finished_at, lang())),
      h("td", {}, h("span", { class: `badge ${srcBadge(s.last_status)}`,
        title: (s.last_errors || []).slice(0, 5).map((x) => `${x.path}: ${x.message}`)
          .join("\n") }, s.last_status ? t(`src.st.${s.last_status}`) : "—")),
      h("td", { class: "small" }, Object.entries(s.last_counts || {})
        .filter(([, v]) => v).map(([k, v]) => `${k} ${v}`).join(" · ")),
      h("td", {},
        h("button", { type: "button", class: "ghost small", "data-testid": "source-run",
          onclick: () => act(() => api("POST", `/api/v1/kbs/${encodeURIComponent(s.kb)}`
            + `/sources/${encodeURIComponent(s.name)}/run`), t("src.queued")) }, t("src.run")),
        h("button", { type: "button", class: "ghost small danger-text", onclick: async () => {
          if (await confirmDialog(t("src.deleteConfirm", { name: s.name }), t("admin.delete"))) {
            act(() => api("DELETE", `/api/v1/kbs/${encodeURIComponent(s.kb)}/sources/`
              + encodeURIComponent(s.name)));
          }
        } }, t("admin.delete")))))));

  const summary = (e) => {
    const d = e.detail || {};
    if (d.question) return d.question;
    if (d.query) return d.query;
    if (d.files) return d.files.map((f) => f.name).join("、");
    if (d.rating) return d.rating === "up" ? t("fb.up") : t("fb.down");
    return e.target || "";
  };
  const auditTable = h("table", { class: "table compact", "data-testid": "audit" },
    h("thead", {}, h("tr", {}, ["time", "user", "action", "kb", "detail"].map((c) =>
      h("th", {}, t(`admin.${c}`))))),
    h("tbody", {}, entries.map((e) => h("tr", {},
      h("td", { class: "nowrap" }, fmtTime(e.ts, lang())),
      h("td", {}, e.user || "cli"),
      h("td", {}, h("span", { class: "kind" }, e.action)),
      h("td", {}, e.kb || "—"),
      h("td", { class: "detail" }, summary(e))))));

  view().replaceChildren(h("section", { class: "admin" },
    h("div", { class: "page-head" }, h("h1", {}, t("nav.admin"))),
    h("div", { class: "card" }, h("h2", {}, t("admin.users")), createUser, usersTable),
    h("div", { class: "card" }, h("h2", {}, t("admin.groupsTitle")),
      h("p", { class: "muted small" }, t("admin.groupsLead")), createGroup, groupsTable),
    h("div", { class: "card" }, h("h2", {}, t("admin.keys")), keysTable),
    h("div", { class: "card" }, h("h2", {}, t("src.title")), createSource, sourcesTable),
    h("div", { class: "card" },
      h("div", { class: "card-head" }, h("h2", {}, t("admin.audit")),
        h("div", { class: "actions" },
          h("button", { type: "button", class: "ghost small", onclick: () =>
            download("/api/v1/audit?format=jsonl&limit=100000", "zhiku-audit.jsonl")
              .catch(showError) }, `${t("admin.export")} JSONL`),
          h("button", { type: "button", class: "ghost small", onclick: () =>
            download("/api/v1/audit?format=csv&limit=100000", "zhiku-audit.csv")
              .catch(showError) }, `${t("admin.export")} CSV`))),
      auditTable)));
}

// --- start ----------------------------------------------------------------------------------------

async function start() {
  setLang(lang());
  $("#lang-toggle").addEventListener("click", () => {
    setLang(lang() === "en" ? "zh-TW" : "en");
    render();
  });
  $("#logout").addEventListener("click", async () => {
    if (hasSession()) {
      try {
        await api("POST", "/api/v1/auth/logout");
      } catch {
        // already signed out
      }
    }
    clearKey();
    app.me = null;
    app.agent = undefined;
    app.conversation = null;
    render();
  });
  window.addEventListener("hashchange", () => render());
  window.addEventListener("zhiku:unauthorized", () => {
    if (!app.me) return;
    clearKey();
    app.me = null;
    render();
  });
  if (getKey() || hasSession()) {
    try {
      app.me = await api("GET", "/api/v1/me");
    } catch {
      app.me = null;
    }
  }
  await render();
}

start();
