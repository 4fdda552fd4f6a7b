// wabot console: live updates (Server-Sent Events), quick answers, the simulator. No build step.
"use strict";
(function () {
  const body = document.body;
  const prefix = body.dataset.prefix || "/console";
  const csrfMeta = document.querySelector('meta[name="csrf"]');
  const csrf = csrfMeta ? csrfMeta.content : "";
  const baseTitle = document.title;

  async function fragment(url, target) {
    const resp = await fetch(url, { headers: { Accept: "text/html" }, credentials: "same-origin" });
    if (resp.ok && target) target.innerHTML = await resp.text();
  }

  async function badge() {
    const resp = await fetch(prefix + "/inbox/count.json", { credentials: "same-origin" });
    if (!resp.ok) return;
    const n = (await resp.json()).waiting;
    const el = document.getElementById("badge");
    if (el) { el.textContent = String(n); el.hidden = n === 0; }
    document.title = n ? "(" + n + ") " + baseTitle : baseTitle;
  }

  function live() {
    if (!csrf || !window.EventSource) return;
    badge();
    const conversation = document.getElementById("conversation");
    const who = conversation ? conversation.dataset.customer : null;
    if (who && document.querySelector('[data-testid="tick"][title="queued"]')) refresh(who, 10);
    const source = new EventSource(prefix + "/events");
    source.onmessage = function (event) {
      const h = JSON.parse(event.data);
      if (h.kind === "overflow") { location.reload(); return; }
      if (h.kind === "handoff_opened" || h.kind === "handoff_closed" || h.kind === "message_in") {
        if (h.kind !== "message_in") badge();
        if (body.dataset.page === "inbox") fragment(prefix + "/inbox/items", document.getElementById("inbox"));
      }
      if (who && h.customer === who && h.kind !== "turn") refresh(who, 10);
    };
  }

  // Meta's acceptance (queued -> sent) has no happening of its own: while a tick shows "queued", look again
  let pending = null;
  async function refresh(who, tries) {
    const live = document.getElementById("live");
    await fragment(prefix + "/c/" + encodeURIComponent(who) + "/messages", live);
    clearTimeout(pending);
    if (tries > 0 && live.querySelector('[data-testid="tick"][title="queued"]')) {
      pending = setTimeout(function () { refresh(who, tries - 1); }, 700);
    }
  }

  function quickAnswers() {
    const box = document.getElementById("reply-text");
    document.querySelectorAll("[data-quick]").forEach(function (chip) {
      chip.addEventListener("click", function () { box.value = chip.dataset.quick; box.focus(); });
    });
  }

  function simulator() {
    const sim = document.getElementById("sim");
    if (!sim) return;
    const chat = document.getElementById("sim-chat");
    const input = document.getElementById("sim-text");
    const liveBox = document.getElementById("sim-live");
    const resume = document.getElementById("sim-resume");
    const stateLine = document.getElementById("sim-state");

    function bubble(cls, text) {
      const li = document.createElement("li");
      li.className = cls;
      li.dataset.testid = "sim-message";
      li.setAttribute("data-testid", "sim-message");
      li.textContent = text;
      chat.appendChild(li);
      return li;
    }

    function choice(li, id, title, kind, description) {
      let box = li.querySelector(".choices");
      if (!box) { box = document.createElement("div"); box.className = "choices"; li.appendChild(box); }
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = title + (description ? " — " + description : "");
      b.setAttribute("data-testid", "sim-choice");
      b.addEventListener("click", function () { say({ tap: { id: id, title: title, kind: kind } }, title); });
      box.appendChild(b);
    }

    function draw(m) {
      const li = bubble("bot", (m.header ? m.header + "\n" : "") + (m.text || "") + (m.footer ? "\n" + m.footer : ""));
      if (m.kind === "buttons") m.buttons.forEach(function (b) { choice(li, b.id, b.title, "button_reply"); });
      if (m.kind === "list") {
        m.sections.forEach(function (s) {
          if (s.title) { const h = document.createElement("div"); h.className = "section"; h.textContent = s.title; li.appendChild(h); }
          s.rows.forEach(function (r) { choice(li, r.id, r.title, "list_reply", r.description); });
        });
      }
      if (m.kind === "cta") { const a = document.createElement("a"); a.href = m.url; a.textContent = m.display; a.rel = "noopener noreferrer"; li.appendChild(document.createElement("br")); li.appendChild(a); }
      if (m.kind === "media" && m.link) { const a = document.createElement("a"); a.href = m.link; a.textContent = "[" + m.media + "]"; a.rel = "noopener noreferrer"; li.prepend(a); }
    }

    async function say(payload, shown) {
      if (shown) bubble("me", shown);
      payload.live = liveBox.checked;
      const resp = await fetch(prefix + "/simulator.json", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, Accept: "application/json" },
        body: JSON.stringify(payload),
      });
      const data = await resp.json();
      if (!resp.ok) { bubble("note", data.error || resp.statusText); return; }
      data.messages.forEach(draw);
      if (data.handoff) bubble("note", sim.dataset.handoff.replace("{reason}", data.handoff));
      (data.calls || []).forEach(function (c) { bubble("note", "http: " + c); });
      const s = data.state;
      resume.hidden = s.status !== "handoff";
      stateLine.textContent = s.status + (s.flow ? " · " + s.flow + " / " + s.step : "") + " · " + JSON.stringify(s.vars);
    }

    document.getElementById("sim-form").addEventListener("submit", function (event) {
      event.preventDefault();
      const text = input.value.trim();
      if (!text) return;
      input.value = "";
      say({ text: text }, text);
    });
    document.getElementById("sim-restart").addEventListener("click", function () { chat.innerHTML = ""; say({ restart: true }); });
    resume.addEventListener("click", function () { say({ resume: true }); });
  }

  function diagrams() {
    if (window.mermaid && document.querySelector("pre.mermaid")) {
      window.mermaid.initialize({ startOnLoad: false, securityLevel: "strict" });
      window.mermaid.run();
    }
  }

  document.addEventListener("DOMContentLoaded", function () { live(); quickAnswers(); simulator(); });
  window.addEventListener("load", diagrams);
})();
