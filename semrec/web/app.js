// The semrec page: plain JavaScript over the JSON API of `semrec serve`, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
let currentUser = null;
let lastRecs = new Set(); // item ids shown last time, to mark what is new after an update
let searchTimer = null;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

async function api(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const token = $("token").value.trim();
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(path, { ...options, headers });
  let data = null;
  try { data = await res.json(); } catch (_) { /* empty body */ }
  if (!res.ok) {
    let detail = (data && data.detail) || `${res.status} ${res.statusText}`;
    if (res.status === 401) detail += " (fill in the write token at the bottom of the page)";
    throw new Error(detail);
  }
  return data;
}

function k() {
  const v = parseInt($("k").value, 10);
  return Number.isFinite(v) && v >= 1 ? Math.min(v, 100) : 10;
}

// The re-ranking knobs as query parameters ("" when both are off: the model's own order).
function knobQuery() {
  let q = "";
  for (const name of ["diversity", "novelty"]) {
    const v = Number($(name).value);
    if (Number.isFinite(v) && v > 0) q += `&${name}=${$(name).value}`;
  }
  return q;
}

function knobBody() {
  return { diversity: Number($("diversity").value) || 0, novelty: Number($("novelty").value) || 0 };
}

function knobText() {
  const parts = [];
  if (Number($("diversity").value) > 0) parts.push(`diversity ${$("diversity").value}`);
  if (Number($("novelty").value) > 0) parts.push(`less popular ${$("novelty").value}`);
  return parts.length ? ` · re-ranked: ${parts.join(", ")}` : "";
}

// Mark the long-tail items of a shown list; returns how many there are.
async function markTail(list, ids) {
  if (!ids.length) return 0;
  const data = await api(`/popularity?items=${ids.map(encodeURIComponent).join(",")}`);
  let n = 0;
  for (const p of data.items) {
    if (!p.tail) continue;
    n += 1;
    const li = list.querySelector(`li[data-item="${CSS.escape(p.item)}"]`);
    if (li && !li.querySelector(".badge.tail")) {
      li.querySelector(".title").after(" ", el("span", {
        class: "badge tail",
        title: `long tail: ${p.interactions} training interactions (the head has at least ${data.head_min_interactions})`,
      }, "tail"));
    }
  }
  return n;
}

function itemLabel(it) {
  const frag = document.createDocumentFragment();
  frag.append(el("span", { class: "title" }, it.title || `item ${it.item}`), " ",
              el("span", { class: "id" }, `[${it.item}]`));
  return frag;
}

// ---------------------------------------------------------------- users
async function searchUsers(query) {
  const data = await api(`/users?query=${encodeURIComponent(query)}&limit=24`);
  const list = $("user-results");
  list.replaceChildren(...data.users.map((u) => el("li", {},
    el("button", { type: "button", class: "user-pick", "data-user": u.user,
                   "aria-pressed": String(u.user === currentUser),
                   onclick: () => selectUser(u.user) },
       `${u.user} (${u.n_items} items)`))));
  if (!data.users.length) list.append(el("li", { class: "muted" }, "no user id contains that"));
  return data.users;
}

async function selectUser(user) {
  showError("");
  if (user !== currentUser) lastRecs = new Set();
  currentUser = user;
  for (const b of document.querySelectorAll(".user-pick")) {
    b.setAttribute("aria-pressed", String(b.dataset.user === user));
  }
  const url = new URL(window.location.href);
  url.searchParams.set("user", user);
  window.history.replaceState(null, "", url);
  $("user-view").hidden = false;
  $("user-heading").textContent = `User ${user}`;
  await Promise.all([loadHistory(user), loadRecs(user)]);
}

async function loadHistory(user) {
  const data = await api(`/history?user=${encodeURIComponent(user)}&limit=50`);
  $("history-heading").textContent = `History (${data.items.length}${data.items.length === 50 ? "+" : ""})`;
  const list = $("history");
  list.replaceChildren(...data.items.map((it) => el("li", {}, itemLabel(it),
    it.rating !== null ? el("span", { class: "score" }, ` rated ${it.rating}`) : null,
    it.live ? el("span", { class: "badge" }, "posted") : null)));
  if (!data.items.length) list.append(el("li", { class: "muted" }, "no history: a cold-start user"));
}

// Answers can arrive out of order (a knob moved twice quickly): only the latest request's is shown.
let recsRequest = 0;

async function loadRecs(user) {
  const mine = ++recsRequest;
  $("recs-status").textContent = "loading…";
  const data = await api(`/recommend?user=${encodeURIComponent(user)}&k=${k()}${knobQuery()}`);
  if (mine !== recsRequest) return;
  const list = $("recs");
  const shown = new Set();
  const rows = data.items.map((it) => {
    shown.add(it.item);
    const fresh = lastRecs.size > 0 && !lastRecs.has(it.item);
    const why = el("p", { class: "why" }, "why: …");
    const li = el("li", { class: fresh ? "rec fresh" : "rec", "data-item": it.item }, itemLabel(it),
      fresh ? el("span", { class: "badge" }, "new") : null,
      el("span", { class: "score" }, ` score ${it.score.toFixed(3)}`),
      el("button", { type: "button", class: "like secondary", "aria-label": `Mark ${it.title || it.item} as liked`,
                     onclick: () => postEvent(it.item, null) }, "Liked it"),
      why);
    explain(user, it.item, why);
    return li;
  });
  list.replaceChildren(...rows);
  const changed = lastRecs.size > 0 ? [...shown].filter((i) => !lastRecs.has(i)).length : null;
  lastRecs = shown;
  const status = changed === null
    ? `top ${data.items.length}`
    : `updated: ${changed} new item${changed === 1 ? "" : "s"} in the top ${data.items.length}`;
  $("recs-status").textContent = status + knobText();
  const tail = await markTail(list, data.items.map((it) => it.item));
  if (mine !== recsRequest) return;
  $("recs-status").textContent = `${status} · ${tail} from the long tail${knobText()}`;
}

async function explain(user, item, target) {
  try {
    const e = await api(`/explain?user=${encodeURIComponent(user)}&item=${encodeURIComponent(item)}`);
    target.textContent = e.sentence;
  } catch (err) {
    target.textContent = `no explanation (${err.message})`;
  }
}

// ---------------------------------------------------------------- events
async function postEvent(item, rating) {
  if (!currentUser) return;
  showError("");
  const body = { user: currentUser, item };
  if (rating !== null && rating !== "" && !Number.isNaN(Number(rating))) body.rating = Number(rating);
  try {
    const out = await api("/events", { method: "POST", body: JSON.stringify(body) });
    $("event-status").textContent = out.stored
      ? `stored: ${currentUser} interacted with ${item}`
      : `already stored (duplicate): ${currentUser} and ${item}`;
    await Promise.all([loadHistory(currentUser), loadRecs(currentUser),
                       searchUsers($("user-query").value.trim())]);
  } catch (err) {
    $("event-status").textContent = "";
    showError(`post interaction: ${err.message}`);
  }
}

// ---------------------------------------------------------------- cold start
async function coldStart(text) {
  $("cold-status").textContent = "loading…";
  const data = await api("/recommend", { method: "POST", body: JSON.stringify({ text, k: k(), ...knobBody() }) });
  const list = $("cold-recs");
  list.replaceChildren(...data.items.map((it) => el("li", { class: "rec", "data-item": it.item }, itemLabel(it),
    el("span", { class: "score" }, ` score ${it.score.toFixed(3)}`))));
  $("cold-status").textContent = `top ${data.items.length} for “${text}”${knobText()}`;
  const tail = await markTail(list, data.items.map((it) => it.item));
  $("cold-status").textContent = `top ${data.items.length} for “${text}” · ${tail} from the long tail${knobText()}`;
}

// ---------------------------------------------------------------- wiring
function guard(fn) {
  return async (...args) => {
    try { await fn(...args); } catch (err) { showError(err.message); }
  };
}

document.addEventListener("DOMContentLoaded", () => {
  $("token").value = sessionStorage.getItem("semrec-token") || "";
  $("token").addEventListener("change", () => sessionStorage.setItem("semrec-token", $("token").value));

  $("user-query").addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(guard(() => searchUsers($("user-query").value.trim())), 150);
  });
  $("user-form").addEventListener("submit", guard(async (ev) => {
    ev.preventDefault();
    const q = $("user-query").value.trim();
    const users = await searchUsers(q);
    const exact = users.find((u) => u.user === q);
    if (exact || (q && users.length === 0)) await selectUser(q); // an unknown id is a cold-start user
    else if (users.length === 1) await selectUser(users[0].user);
  }));
  $("event-form").addEventListener("submit", guard(async (ev) => {
    ev.preventDefault();
    await postEvent($("event-item").value.trim(), $("event-rating").value);
  }));
  for (const name of ["diversity", "novelty"]) {
    $(name).addEventListener("input", () => { $(`${name}-value`).textContent = $(name).value; });
    $(name).addEventListener("change", guard(async () => {
      $(`${name}-value`).textContent = $(name).value;
      if (currentUser) await loadRecs(currentUser);
    }));
  }
  $("cold-form").addEventListener("submit", guard(async (ev) => {
    ev.preventDefault();
    await coldStart($("cold-text").value.trim());
  }));

  guard(async () => {
    const h = await api("/health");
    $("health").textContent = `${h.model} · ${h.n_users.toLocaleString()} users · ` +
      `${h.n_items.toLocaleString()} items · ${h.live_users.toLocaleString()} live users`;
  })();
  guard(() => searchUsers(""))();
  const start = new URL(window.location.href).searchParams.get("user");
  if (start) { $("user-query").value = start; guard(() => selectUser(start))(); }
});
