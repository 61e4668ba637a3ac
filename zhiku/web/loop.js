// The service loop in the web UI: the agent inbox, the analytics page (charts by the
// vendored uPlot), and the hand-off pieces of the chat (轉真人 button, agents' replies).
// Data is only ever rendered as text (dom.js).

import { api } from "./api.js";
import { fmtTime, h } from "./dom.js";
import { addStrings, lang, t } from "./i18n.js";
import uPlot from "./vendor/uplot/uPlot.esm.js";

addStrings({
  "nav.inbox": "客服收件匣",
  "nav.analytics": "分析",
  "ho.button": "轉真人",
  "ho.offer": "找不到答案？可以轉給真人客服。",
  "ho.requested": "已轉接真人客服，回覆會顯示在這裡。",
  "ho.agent": "客服人員",
  "inbox.open": "處理中",
  "inbox.resolved": "已結案",
  "inbox.empty": "沒有案件。",
  "inbox.pick": "選擇左側的案件。",
  "inbox.note": "內部備註（使用者看不到）",
  "inbox.reply": "回覆使用者",
  "inbox.addNote": "加備註",
  "inbox.send": "送出回覆",
  "inbox.assignUser": "指派給（使用者）",
  "inbox.assignDept": "轉給部門",
  "inbox.assign": "指派",
  "inbox.resolve": "結案",
  "inbox.reopen": "重新開啟",
  "inbox.reason.asked": "使用者要求",
  "inbox.reason.refused": "拒答後轉接",
  "inbox.reason.feedback": "👎 後轉接",
  "an.since": "期間",
  "an.allKbs": "全部知識庫",
  "an.questions": "提問",
  "an.conversations": "對話",
  "an.answered": "回答率",
  "an.refused": "拒答率",
  "an.handoff": "轉真人率",
  "an.feedback": "好評／負評",
  "an.answerMs": "平均回答時間",
  "an.firstReply": "真人首次回覆",
  "an.resolution": "結案時間",
  "an.perDay": "每日提問",
  "an.hours": "尖峰時段（時）",
  "an.cited": "最常被引用的文件",
  "an.never": "從未被引用的文件：{n} 份",
  "an.gaps": "知識缺口",
  "an.write": "寫答案",
  "an.curated": "精選問答成效（補上前 → 補上後的未回答率）",
  "an.answerPh": "正確答案（會成為知識庫的精選問答並被引用）",
  "an.saved": "已加入精選問答",
  "an.none": "（無）",
  "an.pin": "釘選段落",
  "an.pinTitle": "為這個問題釘選一段更好的段落",
  "an.pinSearch": "在知識庫中搜尋",
  "an.pinChoose": "釘選",
  "an.pinned": "已釘選段落",
  "an.pins": "釘選的段落（相同或幾乎相同的問題會優先引用）",
  "an.unpin": "取消釘選",
  "an.unpinned": "已取消釘選",
  "conv.rename": "重新命名",
  "conv.delete": "刪除",
  "conv.deleteQ": "刪除這段對話？",
  "kb.chooseFolder": "選擇資料夾",
}, {
  "nav.inbox": "Inbox",
  "nav.analytics": "Analytics",
  "ho.button": "Talk to a person",
  "ho.offer": "No answer? A person can help.",
  "ho.requested": "A person will reply here.",
  "ho.agent": "Agent",
  "inbox.open": "Open",
  "inbox.resolved": "Resolved",
  "inbox.empty": "No cases.",
  "inbox.pick": "Pick a case on the left.",
  "inbox.note": "Internal note (the user does not see it)",
  "inbox.reply": "Reply to the user",
  "inbox.addNote": "Add note",
  "inbox.send": "Send reply",
  "inbox.assignUser": "Assign to (user)",
  "inbox.assignDept": "Hand to department",
  "inbox.assign": "Assign",
  "inbox.resolve": "Resolve",
  "inbox.reopen": "Reopen",
  "inbox.reason.asked": "Asked by the user",
  "inbox.reason.refused": "After a refusal",
  "inbox.reason.feedback": "After a 👎",
  "an.since": "Period",
  "an.allKbs": "All knowledge bases",
  "an.questions": "Questions",
  "an.conversations": "Conversations",
  "an.answered": "Answered",
  "an.refused": "Refused",
  "an.handoff": "Handed off",
  "an.feedback": "Thumbs up / down",
  "an.answerMs": "Mean time to answer",
  "an.firstReply": "First human reply",
  "an.resolution": "Time to resolution",
  "an.perDay": "Questions per day",
  "an.hours": "Busiest hours",
  "an.cited": "Most cited documents",
  "an.never": "Documents never cited: {n}",
  "an.gaps": "Knowledge gaps",
  "an.write": "Write the answer",
  "an.curated": "Curated entries (unanswered rate before → after)",
  "an.answerPh": "The right answer (becomes a curated FAQ entry of the KB, cited)",
  "an.saved": "Curated entry added",
  "an.none": "(none)",
  "an.pin": "Pin a passage",
  "an.pinTitle": "Pin a better passage for this question",
  "an.pinSearch": "Search the knowledge base",
  "an.pinChoose": "Pin",
  "an.pinned": "Passage pinned",
  "an.pins": "Pinned passages (cited first for the same or a near-identical question)",
  "an.unpin": "Unpin",
  "an.unpinned": "Passage unpinned",
  "conv.rename": "Rename",
  "conv.delete": "Delete",
  "conv.deleteQ": "Delete this conversation?",
  "kb.chooseFolder": "Choose a folder",
});

// uPlot's own stylesheet (legend, cursor), once; served by the app (CSP style-src 'self').
if (!document.querySelector("link[data-uplot]")) {
  document.head.append(h("link", { rel: "stylesheet", href: "/static/vendor/uplot/uPlot.min.css",
    "data-uplot": "1" }));
}

const pct = (x) => (x === null || x === undefined ? "–" : `${(x * 100).toFixed(1)}%`);
const secs = (s) => (s === null || s === undefined ? "–"
  : s < 120 ? `${Math.round(s)} s` : s < 7200 ? `${Math.round(s / 60)} min`
    : `${(s / 3600).toFixed(1)} h`);

// --- chat: hand-off and agents' replies ---------------------------------------------------

export function handoffButton(getConversation, onDone, reason = "asked") {
  const btn = h("button", { type: "button", class: "ghost small handoff",
    "data-testid": "handoff", onclick: async () => {
      const conv = getConversation();
      if (!conv) return;
      btn.disabled = true;
      try {
        await api("POST", `/api/v1/conversations/${encodeURIComponent(conv)}/handoff`,
          { reason });
        btn.replaceWith(h("span", { class: "muted small", "data-testid": "handoff-done" },
          t("ho.requested")));
        onDone?.();
      } catch (err) {
        btn.disabled = false;
        throw err;
      }
    } }, t("ho.button"));
  return btn;
}

export function handoffOffer(getConversation, onDone, reason) {
  return h("div", { class: "handoff-offer", "data-testid": "handoff-offer" },
    h("span", { class: "muted small" }, t("ho.offer")), " ",
    handoffButton(getConversation, onDone, reason));
}

// Agents' replies of a conversation, appended to the messages; polls while a case is open.
export function followReplies(convId, messages, polls) {
  let stopped = false;
  const shown = new Set();
  polls.add(() => { stopped = true; });
  const tick = async () => {
    if (stopped) return;
    let data;
    try {
      data = await api("GET", `/api/v1/conversations/${encodeURIComponent(convId)}/replies`);
    } catch {
      return;
    }
    for (const r of data.replies) {
      if (shown.has(r.id)) continue;
      shown.add(r.id);
      messages.append(h("article", { class: "turn agent-turn", "data-testid": "agent-reply" },
        h("div", { class: "a" }, h("div", { class: "a-body" },
          h("div", { class: "eyebrow" }, `${t("ho.agent")} ${r.author}`),
          h("div", { class: "answer-text" }, r.body)))));
    }
    if (data.handoff && data.handoff.status === "open" && !stopped) setTimeout(tick, 4000);
  };
  return tick();
}

export function conversationActions(conv, refresh, confirmDialog, onDeleted) {
  return h("span", { class: "conv-actions" },
    h("button", { type: "button", class: "ghost icon small", title: t("conv.rename"),
      "aria-label": t("conv.rename"), "data-testid": "conv-rename", onclick: async () => {
        const title = window.prompt(t("conv.rename"), conv.title || "");
        if (!title || !title.trim()) return;
        await api("PATCH", `/api/v1/conversations/${encodeURIComponent(conv.id)}`,
          { title: title.trim() });
        await refresh();
      } }, "✎"),
    h("button", { type: "button", class: "ghost icon small", title: t("conv.delete"),
      "aria-label": t("conv.delete"), "data-testid": "conv-delete", onclick: async () => {
        if (!(await confirmDialog(t("conv.deleteQ"), t("conv.delete")))) return;
        await api("DELETE", `/api/v1/conversations/${encodeURIComponent(conv.id)}`);
        onDeleted(conv.id);
        await refresh();
      } }, "🗑"));
}

// --- the agent inbox ---------------------------------------------------------------------------

export async function renderInbox(view, showError, toast) {
  let status = "open";
  let current = null;
  const list = h("ul", { class: "case-list", "data-testid": "case-list" });
  const detail = h("div", { class: "case-detail", "data-testid": "case-detail" },
    h("p", { class: "muted" }, t("inbox.pick")));
  const filter = h("div", { class: "seg" }, ["open", "resolved"].map((s) =>
    h("button", { type: "button", class: s === status ? "seg-btn active" : "seg-btn",
      "data-testid": `inbox-${s}`, onclick: async (e) => {
        status = s;
        for (const b of filter.children) b.classList.toggle("active", b === e.target);
        await refresh();
      } }, t(`inbox.${s}`))));

  async function refresh() {
    const cases = (await api("GET", `/api/v1/inbox?status=${status}`)).cases;
    list.replaceChildren(...(cases.length ? cases.map((c) => h("li", {},
      h("button", { type: "button", class: c.id === current ? "conv active" : "conv",
        "data-testid": "case", onclick: () => open(c.id).catch(showError) },
      h("span", { class: "conv-title" }, `#${c.id} ${c.question}`),
      h("span", { class: "conv-time" },
        [c.department, c.assignee, fmtTime(c.created_at, lang())].filter(Boolean)
          .join(" · "))))) : [h("li", { class: "muted small" }, t("inbox.empty"))]));
  }

  async function post(path, body) {
    try {
      await api("POST", path, body);
      await open(current);
      await refresh();
    } catch (err) {
      showError(err);
    }
  }

  async function open(id) {
    current = id;
    const c = await api("GET", `/api/v1/cases/${id}`);
    const base = `/api/v1/cases/${id}`;
    const note = h("textarea", { rows: 2, placeholder: t("inbox.note"), "data-testid": "note" });
    const reply = h("textarea", { rows: 2, placeholder: t("inbox.reply"),
      "data-testid": "reply" });
    const user = h("input", { placeholder: t("inbox.assignUser"), "data-testid": "assign-user" });
    const dept = h("input", { placeholder: t("inbox.assignDept"), "data-testid": "assign-dept" });
    detail.replaceChildren(
      h("header", { class: "case-head" },
        h("h2", {}, `#${c.id} ${c.question}`),
        h("p", { class: "muted small" }, [c.kb, c.department, t(`inbox.reason.${c.reason}`),
          c.assignee, fmtTime(c.created_at, lang())].filter(Boolean).join(" · ")),
        c.status === "open"
          ? h("button", { type: "button", class: "primary small", "data-testid": "resolve",
            onclick: () => post(`${base}/resolve`) }, t("inbox.resolve"))
          : h("button", { type: "button", class: "ghost small", "data-testid": "reopen",
            onclick: () => post(`${base}/reopen`) }, t("inbox.reopen"))),
      h("div", { class: "case-turns" }, c.turns.map((turn) => h("div", { class: "case-turn" },
        h("p", { class: "bubble q-bubble" }, turn.question),
        h("p", { class: "case-answer" }, turn.answer.answer),
        turn.answer.citations?.length ? h("p", { class: "muted small" },
          turn.answer.citations.map((x, i) => `[${i + 1}]《${x.doc}》${x.section || ""}`)
            .join("　")) : null))),
      h("ul", { class: "case-entries", "data-testid": "entries" }, c.entries.map((e) =>
        h("li", { class: `entry ${e.kind}` },
          h("span", { class: "muted small" }, `${e.author} · ${fmtTime(e.created_at, lang())}`),
          h("p", {}, e.body)))),
      c.status === "open" ? h("form", { class: "case-form", onsubmit: (e) => {
        e.preventDefault();
        if (reply.value.trim()) post(`${base}/replies`, { body: reply.value.trim() });
      } }, reply, h("button", { type: "submit", class: "primary small",
        "data-testid": "send-reply" }, t("inbox.send"))) : null,
      h("form", { class: "case-form", onsubmit: (e) => {
        e.preventDefault();
        if (note.value.trim()) post(`${base}/notes`, { body: note.value.trim() });
      } }, note, h("button", { type: "submit", class: "ghost small",
        "data-testid": "add-note" }, t("inbox.addNote"))),
      h("form", { class: "case-form row", onsubmit: (e) => {
        e.preventDefault();
        post(`${base}/assign`, { user: user.value.trim() || null,
          department: dept.value.trim() || null });
      } }, user, dept, h("button", { type: "submit", class: "ghost small",
        "data-testid": "assign" }, t("inbox.assign"))));
    await refresh();
  }

  view.replaceChildren(h("section", { class: "inbox" },
    h("aside", { class: "sidebar" }, h("h1", {}, t("nav.inbox")), filter, list), detail));
  await refresh();
}

// --- analytics ---------------------------------------------------------------------------------

function chart(el, title, xs, series, bars = false) {
  const width = Math.max(280, Math.min(el.clientWidth || 600, 900));
  const palette = ["#0f766e", "#b45309", "#4338ca", "#be123c", "#15803d"];
  const opts = {
    title, width, height: 220,
    scales: { x: { time: false } },
    axes: [{ values: (_u, ticks) => ticks.map((i) => xs[i] ?? "") }, {}],
    series: [{ value: (_u, i) => xs[i] ?? "" }, ...series.map((s, i) => ({
      label: s.label, stroke: palette[i % palette.length], width: 2,
      fill: bars ? `${palette[i % palette.length]}55` : undefined,
      paths: bars ? uPlot.paths.bars({ size: [0.7, 40] }) : undefined,
    }))],
  };
  const data = [xs.map((_x, i) => i), ...series.map((s) => s.values)];
  return new uPlot(opts, data, el);
}

export async function renderAnalytics(view, ctx) {
  const { app, showError, toast, modal } = ctx;
  let since = "7d";
  let kb = "";
  const body = h("div", { class: "analytics-body", "data-testid": "analytics" });
  const sinceSel = h("select", { "data-testid": "an-since", "aria-label": t("an.since"),
    onchange: (e) => { since = e.target.value; load().catch(showError); } },
  ["1d", "7d", "30d", "90d"].map((v) => h("option", { value: v, selected: v === since }, v)));
  const kbSel = h("select", { "data-testid": "an-kb", onchange: (e) => {
    kb = e.target.value; load().catch(showError); } },
  h("option", { value: "" }, t("an.allKbs")),
  app.kbs.map((k) => h("option", { value: k.name }, k.name)));

  async function writeAnswer(gap) {
    const kbName = Object.keys(gap.kbs)[0];
    const answer = await modal((close) => {
      const ta = h("textarea", { rows: 5, placeholder: t("an.answerPh"),
        "data-testid": "curate-answer", maxlength: 4000 });
      return h("form", { class: "modal-body", onsubmit: (e) => {
        e.preventDefault(); close(ta.value.trim()); } },
      h("p", { class: "modal-text" }, gap.examples.join(" / ")), ta,
      h("div", { class: "modal-actions" },
        h("button", { type: "button", class: "ghost", onclick: () => close(null) },
          t("common.cancel")),
        h("button", { type: "submit", class: "primary", "data-testid": "curate-save" },
          t("common.ok"))));
    });
    if (!answer) return;
    await api("POST", `/api/v1/kbs/${encodeURIComponent(kbName)}/curated`, {
      question: gap.examples[0], questions: gap.examples, answer,
      message_ids: gap.message_ids });
    toast(t("an.saved"));
    await load();
  }

  async function pinPassage(gap) {
    const kbName = Object.keys(gap.kbs)[0];
    const passage = await modal((close) => {
      const results = h("ul", { class: "pin-results", "data-testid": "pin-results" });
      const input = h("input", { type: "search", value: gap.examples[0], maxlength: 200,
        "aria-label": t("an.pinSearch"), "data-testid": "pin-query" });
      async function search() {
        const r = await api("POST", `/api/v1/kbs/${encodeURIComponent(kbName)}/search`,
          { query: input.value.trim(), k: 5, kbs: [kbName] });
        results.replaceChildren(...(r.hits.length ? r.hits.map((hit) =>
          h("li", { class: "pin-hit", "data-testid": "pin-hit" },
            h("div", { class: "small muted" }, `《${hit.doc}》${hit.section ? ` ${hit.section}` : ""}`),
            h("div", { class: "pin-text" }, hit.text.slice(0, 240)),
            h("button", { type: "button", class: "primary small", "data-testid": "pin-choose",
              onclick: () => close(hit.passage_id) }, t("an.pinChoose"))))
          : [h("li", { class: "muted" }, t("an.none"))]));
      }
      return h("form", { class: "modal-body", onsubmit: (e) => {
        e.preventDefault(); search().catch(showError); } },
      h("p", { class: "modal-text" }, t("an.pinTitle")),
      h("p", { class: "modal-text muted" }, gap.examples.join(" / ")),
      h("div", { class: "pin-search" }, input,
        h("button", { type: "submit", class: "ghost", "data-testid": "pin-search" },
          t("an.pinSearch"))),
      results,
      h("div", { class: "modal-actions" },
        h("button", { type: "button", class: "ghost", onclick: () => close(null) },
          t("common.cancel"))));
    });
    if (!passage) return;
    await api("POST", `/api/v1/kbs/${encodeURIComponent(kbName)}/pins`, {
      question: gap.examples[0], questions: gap.examples, passage_id: passage,
      message_ids: gap.message_ids });
    toast(t("an.pinned"));
    await load();
  }

  async function pinsOf(names) {
    const lists = await Promise.all(names.map((n) =>
      api("GET", `/api/v1/kbs/${encodeURIComponent(n)}/pins`).then((r) => r.pins, () => [])));
    return lists.flat();
  }

  async function unpin(pin) {
    await api("DELETE", `/api/v1/kbs/${encodeURIComponent(pin.kb)}/pins/${pin.id}`);
    toast(t("an.unpinned"));
    await load();
  }

  async function load() {
    const q = `since=${since}${kb ? `&kb=${encodeURIComponent(kb)}` : ""}`;
    const r = await api("GET", `/api/v1/analytics?${q}`);
    const tt = r.totals;
    const card = (label, value, id) => h("div", { class: "stat", "data-testid": id },
      h("div", { class: "stat-value" }, String(value)), h("div", { class: "stat-label" }, label));
    const byKb = {};
    for (const row of r.per_day) {
      (byKb[row.kb] ||= Object.fromEntries(r.days.map((d) => [d, 0])))[row.day] += row.questions;
    }
    const perDay = h("div", { class: "chart", "data-testid": "chart-days" });
    const hours = h("div", { class: "chart", "data-testid": "chart-hours" });
    const hourCounts = Array.from({ length: 24 }, () => 0);
    for (const x of r.busiest_hours) hourCounts[x.hour] = x.questions;
    const canEdit = app.me.role !== "reader";
    const pins = canEdit ? await pinsOf(r.kbs) : [];
    body.replaceChildren(...[
      h("div", { class: "stats" },
        card(t("an.questions"), tt.questions, "stat-questions"),
        card(t("an.conversations"), tt.conversations, "stat-conversations"),
        card(t("an.answered"), pct(tt.answered_rate), "stat-answered"),
        card(t("an.refused"), pct(tt.refused_rate), "stat-refused"),
        card(t("an.handoff"), pct(tt.handoff_rate), "stat-handoff"),
        card(t("an.feedback"), `${tt.thumbs_up} / ${tt.thumbs_down}`, "stat-feedback"),
        card(t("an.answerMs"), tt.answer_ms_avg === null ? "–" : `${Math.round(tt.answer_ms_avg)} ms`,
          "stat-ms"),
        card(t("an.firstReply"), secs(r.handoff.first_reply_s_avg), "stat-first-reply"),
        card(t("an.resolution"), secs(r.handoff.resolution_s_avg), "stat-resolution")),
      h("div", { class: "charts" }, perDay, hours),
      h("h2", {}, t("an.gaps")),
      h("ul", { class: "gaps", "data-testid": "gaps" }, r.gaps.length ? r.gaps.map((g) =>
        h("li", { class: "gap", "data-testid": "gap" },
          h("span", { class: "gap-count" }, String(g.count)),
          h("span", { class: "gap-text" }, g.examples.join(" / ")),
          h("span", { class: `muted small trend ${g.trend.direction}` }, g.trend.direction),
          canEdit ? h("button", { type: "button", class: "ghost small", "data-testid": "gap-write",
            onclick: () => writeAnswer(g).catch(showError) }, t("an.write")) : null,
          canEdit ? h("button", { type: "button", class: "ghost small", "data-testid": "gap-pin",
            onclick: () => pinPassage(g).catch(showError) }, t("an.pin")) : null))
        : [h("li", { class: "muted" }, t("an.none"))]),
      pins.length ? h("h2", {}, t("an.pins")) : null,
      pins.length ? h("ul", { class: "pins", "data-testid": "pins" }, pins.map((p) =>
        h("li", { class: "pin", "data-testid": "pin" },
          h("div", {}, h("strong", {}, p.question), " → ", `《${p.doc}》`,
            h("span", { class: "muted small" }, ` ${p.author} · ${fmtTime(p.created_at)}`)),
          h("div", { class: "pin-text muted small" }, p.text.slice(0, 160)),
          h("button", { type: "button", class: "ghost small", "data-testid": "pin-remove",
            onclick: () => unpin(p).catch(showError) }, t("an.unpin"))))) : null,
      h("h2", {}, t("an.cited")),
      h("ol", { class: "cited" }, r.most_cited.map((d) =>
        h("li", {}, `《${d.title}》 ${d.kb} · ${d.citations}`))),
      h("p", { class: "muted" }, t("an.never", { n: r.never_cited.count })),
      r.curated.length ? h("h2", {}, t("an.curated")) : null,
      r.curated.length ? h("ul", { class: "curated", "data-testid": "curated" },
        r.curated.map((c) => h("li", {}, `${c.question}：${pct(c.before.rate)} → ${pct(c.after.rate)}`
          + ` (${c.before.asked} → ${c.after.asked})`))) : null].filter(Boolean));
    const kbs = Object.keys(byKb);
    chart(perDay, t("an.perDay"), r.days.map((d) => d.slice(5)),
      kbs.length ? kbs.map((k) => ({ label: k, values: r.days.map((d) => byKb[k][d]) }))
        : [{ label: t("an.questions"), values: r.days.map(() => 0) }]);
    chart(hours, t("an.hours"), hourCounts.map((_c, i) => String(i)),
      [{ label: t("an.questions"), values: hourCounts }], true);
  }

  view.replaceChildren(h("section", { class: "analytics" },
    h("div", { class: "page-head" }, h("div", { class: "head-left" },
      h("h1", {}, t("nav.analytics")), sinceSel, kbSel)), body));
  await load();
}


