// The video library page: plain JavaScript, no build step. It talks to the library API (README, "The library
// page") with the user's token in an Authorization header; the token is kept in sessionStorage only.
"use strict";

(() => {
  const config = window.VIDEO_LIBRARY_CONFIG || {};
  const API_BASE = String(config.apiBaseUrl || "").replace(/\/+$/, "");
  const LOCAL_SIGN_IN = config.localSignIn !== false;
  const PAGE_SIZE = 24;
  const POLL_MS = 2000;
  const SAVE_WATCH_MS = 6 * 60 * 1000; // the save function's timeout is 300 s
  const STORAGE = { token: "videoLibrary.token", user: "videoLibrary.user", campaign: "videoLibrary.campaign" };
  const STATUS_TEXT = { pending: "Queued", processing: "Generating…", completed: "Ready", failed: "Failed" };
  const STATUS_ICON = { pending: "◷", processing: "⟳", completed: "●", failed: "✕" };
  const ERROR_HINTS = {
    source_unavailable: "The provider's file is no longer available",
    source_not_allowed: "The provider's file is somewhere we may not fetch from",
    source_too_large: "The video is too large to save",
    source_not_video: "The provider's file is not a video",
    wrong_state: "Only completed videos can be saved",
    video_not_found: "That video is not in your library",
  };

  const $ = (id) => document.getElementById(id);
  const ui = {
    signIn: $("sign-in"),
    localSignIn: $("local-sign-in"),
    tokenSignIn: $("token-sign-in"),
    signedIn: $("signed-in"),
    signedInUser: $("signed-in-user"),
    signOut: $("sign-out"),
    library: $("library"),
    campaignForm: $("campaign-form"),
    campaignId: $("campaign-id"),
    usage: $("storage-usage"),
    generateForm: $("generate-form"),
    generateButton: $("generate-button"),
    refresh: $("refresh"),
    listStatus: $("list-status"),
    videos: $("videos"),
    loadMore: $("load-more"),
    player: $("player"),
    playerTitle: $("player-title"),
    playerVideo: $("player-video"),
    toastStatus: $("toast-status"),
    toastAlert: $("toast-alert"),
  };

  const state = {
    token: sessionStorage.getItem(STORAGE.token),
    user: sessionStorage.getItem(STORAGE.user),
    campaign: sessionStorage.getItem(STORAGE.campaign) || "42",
    videos: new Map(), // video_id -> Video, in display order (newest first)
    nextCursor: null,
    saving: new Map(), // video_id -> {until, saveError}: saves under way, or carrying on server-side
    pollTimer: null,
    epoch: 0, // bumped on sign-in/out and campaign change: answers to older requests are dropped
  };

  // -- the API ------------------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  // "prompt: the prompt is blank; campaign_id: ..." from validation problems ({loc, msg, type}).
  function describeProblems(problems) {
    return problems
      .map((p) => {
        const where = (p.loc || []).filter((part) => !["body", "query", "path"].includes(part)).join(".");
        const what = String(p.msg || p.type || "").replace(/^Value error, /, "");
        return [where, what].filter(Boolean).join(": ");
      })
      .filter(Boolean)
      .join("; ");
  }

  function describeError(status, body) {
    const error = body && body.error;
    if (error && typeof error === "object" && !Array.isArray(error) && error.message) {
      const details = Array.isArray(error.fields) ? describeProblems(error.fields) : "";
      return new ApiError(status, error.code || "error", details ? `${error.message} (${details})` : String(error.message));
    }
    const problems = Array.isArray(error) ? error : body && Array.isArray(body.detail) ? body.detail : null;
    if (problems) return new ApiError(status, "invalid_request", describeProblems(problems) || "the request was not valid");
    if (status === 401) return new ApiError(401, "unauthorized", "your sign-in is missing, expired or not valid");
    if (status === 503 || status === 504) return new ApiError(status, "unavailable", "the API did not answer in time");
    if (body && typeof body.message === "string") return new ApiError(status, "error", body.message);
    return new ApiError(status, "error", `the API answered HTTP ${status}`);
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (state.token) headers.Authorization = `Bearer ${state.token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(API_BASE + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiError(0, "network", `cannot reach the API${API_BASE ? ` at ${API_BASE}` : ""}`);
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!response.ok) {
      const error = describeError(response.status, data);
      if (response.status === 401 && state.token && path !== "/_dev/token") {
        signOut();
        toast("error", "Please sign in again: your sign-in is missing, expired or not valid.");
      }
      throw error;
    }
    return data;
  }

  const query = (params) =>
    new URLSearchParams(Object.entries(params).filter(([, v]) => v !== null && v !== undefined && v !== "")).toString();

  // -- small helpers ------------------------------------------------------------------------------------

  function el(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "className") node.className = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined && child !== false) node.append(child);
    }
    return node;
  }

  function formatBytes(bytes) {
    if (bytes === null || bytes === undefined) return "unknown size";
    const units = ["bytes", "kB", "MB", "GB", "TB"]; // decimal, as R2 bills
    let value = Number(bytes);
    let unit = 0;
    while (value >= 1000 && unit < units.length - 1) {
      value /= 1000;
      unit += 1;
    }
    return unit === 0 ? `${value} bytes` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
  }

  function formatUsd(amount) {
    if (amount === null || amount === undefined) return "not known yet";
    if (amount > 0 && amount < 0.01) return "less than $0.01";
    return new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", maximumFractionDigits: 2 }).format(amount);
  }

  function formatDate(iso) {
    if (!iso) return "";
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
  }

  function shorten(text, length = 60) {
    const value = String(text || "Untitled video");
    return value.length > length ? `${value.slice(0, length - 1)}…` : value;
  }

  function toast(kind, message) {
    const region = kind === "error" ? ui.toastAlert : ui.toastStatus;
    const item = el(
      "div",
      { className: `toast toast-${kind}` },
      el("span", { className: "toast-icon", "aria-hidden": "true" }, kind === "error" ? "⚠" : kind === "success" ? "✓" : "ℹ"),
      el("p", { className: "toast-text" }, message),
      el("button", { type: "button", className: "toast-close", "aria-label": "Dismiss", onclick: () => item.remove() }, "×"),
    );
    region.append(item);
    while (region.children.length > 3) region.firstElementChild.remove(); // the newest three are enough
    // Errors stay until dismissed; other messages go after a while.
    if (kind !== "error") setTimeout(() => item.remove(), 8000);
  }

  // -- signing in -----------------------------------------------------------------------------------------

  function userFromToken(token) {
    try {
      const payload = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
      return { user: payload.sub || payload.email || "unknown user", exp: payload.exp };
    } catch {
      return null;
    }
  }

  function signIn(token, user) {
    state.token = token;
    state.user = user;
    sessionStorage.setItem(STORAGE.token, token);
    sessionStorage.setItem(STORAGE.user, user);
    showLibrary();
  }

  function signOut() {
    state.token = null;
    state.user = null;
    sessionStorage.removeItem(STORAGE.token);
    sessionStorage.removeItem(STORAGE.user);
    state.epoch += 1;
    stopPolling();
    state.videos.clear();
    state.saving.clear();
    ui.videos.replaceChildren();
    ui.library.hidden = true;
    ui.signedIn.hidden = true;
    ui.signIn.hidden = false;
  }

  function showLibrary() {
    ui.signIn.hidden = true;
    ui.signedIn.hidden = false;
    ui.signedInUser.textContent = state.user;
    ui.library.hidden = false;
    ui.campaignId.value = state.campaign;
    loadList();
    loadUsage();
  }

  ui.localSignIn.addEventListener("submit", async (event) => {
    event.preventDefault();
    const user = ui.localSignIn.elements.user.value.trim();
    const button = ui.localSignIn.querySelector("button");
    button.disabled = true;
    try {
      const answer = await api("POST", "/_dev/token", { user });
      signIn(answer.token, user);
    } catch (error) {
      const hint = error.status === 404 ? " (this API has no local sign-in: paste a token instead)" : "";
      toast("error", `Could not sign in: ${error.message}${hint}.`);
    } finally {
      button.disabled = false;
    }
  });

  ui.tokenSignIn.addEventListener("submit", (event) => {
    event.preventDefault();
    const token = ui.tokenSignIn.elements.token.value.trim().replace(/^Bearer\s+/i, "");
    const claims = userFromToken(token);
    if (!claims) {
      toast("error", "That is not a token: paste the JWT your identity provider gave you.");
      return;
    }
    if (claims.exp && claims.exp * 1000 < Date.now()) {
      toast("error", "That token has expired: get a new one.");
      return;
    }
    ui.tokenSignIn.reset();
    signIn(token, claims.user);
  });

  ui.signOut.addEventListener("click", () => signOut());

  // -- the list ---------------------------------------------------------------------------------------------

  async function loadList({ more = false } = {}) {
    const epoch = state.epoch;
    const campaign = state.campaign;
    if (!more) ui.listStatus.textContent = "Loading videos…";
    ui.loadMore.disabled = true;
    try {
      const page = await api(
        "GET",
        `/api/video/library?${query({ campaign_id: campaign, limit: PAGE_SIZE, cursor: more ? state.nextCursor : null })}`,
      );
      if (epoch !== state.epoch) return;
      if (!more) state.videos.clear();
      for (const video of page.items) state.videos.set(video.video_id, video);
      state.nextCursor = page.next_cursor;
      renderList();
    } catch (error) {
      if (epoch !== state.epoch) return;
      ui.listStatus.textContent = `Could not load the videos: ${error.message}.`;
    } finally {
      ui.loadMore.disabled = false;
    }
  }

  async function loadUsage() {
    const epoch = state.epoch;
    const campaign = state.campaign;
    try {
      const usage = await api("GET", `/api/video/storage-usage?${query({ campaign_id: campaign })}`);
      if (epoch !== state.epoch) return;
      if (!usage.saved_videos) {
        ui.usage.textContent = `Storage: no saved videos in campaign ${campaign} yet.`;
        return;
      }
      const count = `${usage.saved_videos} saved ${usage.saved_videos === 1 ? "video" : "videos"}`;
      const monthly = usage.estimated_monthly_usd;
      const cost = monthly > 0 && monthly < 0.01 ? "under $0.01" : `about ${formatUsd(monthly)}`;
      ui.usage.textContent =
        `Storage: ${count}, ${formatBytes(usage.total_bytes)}, ${cost} a month ` +
        `(at $${usage.usd_per_gb_month} per GB-month).`;
    } catch (error) {
      if (epoch !== state.epoch) return;
      ui.usage.textContent = `Storage: not available (${error.message}).`;
    }
  }

  function renderList() {
    const cards = [...state.videos.values()].map(renderCard);
    ui.videos.replaceChildren(...cards);
    ui.loadMore.hidden = !state.nextCursor;
    const count = state.videos.size;
    ui.listStatus.textContent = count
      ? `${count} ${count === 1 ? "video" : "videos"} in campaign ${state.campaign}${state.nextCursor ? " (more below)" : ""}.`
      : `No videos in campaign ${state.campaign} yet: generate one above.`;
    schedulePoll();
  }

  function updateCard(video) {
    state.videos.set(video.video_id, video);
    const existing = ui.videos.querySelector(`[data-video-id="${CSS.escape(video.video_id)}"]`);
    if (!existing) {
      renderList();
      return;
    }
    if (existing.dataset.signature === signature(video)) return; // nothing changed: keep the DOM (and focus)
    const hadFocus = existing.contains(document.activeElement) ? document.activeElement.dataset.action : null;
    const card = renderCard(video);
    existing.replaceWith(card);
    if (hadFocus) {
      const again = card.querySelector(`[data-action="${hadFocus}"]`);
      (again || card.querySelector("h3")).focus();
    }
  }

  const signature = (video) => JSON.stringify([video, state.saving.has(video.video_id)]);

  function renderCard(video) {
    const titleId = `title-${video.video_id}`;
    const saving = state.saving.has(video.video_id);
    const status = video.status;
    const thumbnail = video.thumbnail_url
      ? el("img", {
          src: video.thumbnail_url,
          alt: "",
          loading: "lazy",
          onerror: (event) => event.target.replaceWith(placeholder(status)),
        })
      : placeholder(status);

    const details = el(
      "dl",
      { className: "facts" },
      el("dt", {}, "Status"),
      el(
        "dd",
        {},
        el(
          "span",
          { className: `badge badge-${status}` },
          el("span", { "aria-hidden": "true" }, `${STATUS_ICON[status] || "?"} `),
          el("span", { className: "status-text" }, STATUS_TEXT[status] || status),
        ),
      ),
      el("dt", {}, "Provider"),
      el("dd", {}, [video.provider, video.model && video.model !== video.provider ? `(${video.model})` : ""].filter(Boolean).join(" ") || "unknown"),
      el("dt", {}, "Cost"),
      el("dd", {}, formatUsd(video.cost_usd)),
      el("dt", {}, "Created"),
      el("dd", {}, el("time", { datetime: video.created_at }, formatDate(video.created_at))),
      video.saved_to_r2 ? [el("dt", {}, "Size"), el("dd", {}, formatBytes(video.size_bytes))] : null,
    );

    const actions = el("div", { className: "actions" });
    if (status === "completed" && video.video_url) {
      actions.append(
        el("button", { type: "button", "data-action": "view", "aria-describedby": titleId, onclick: () => play(video) }, "View"),
      );
    }
    if (status === "completed" && (video.video_raw_url || video.video_url)) {
      actions.append(
        el(
          "a",
          {
            className: "button secondary",
            "data-action": "download",
            href: video.video_raw_url || video.video_url,
            download: `${video.video_id}.mp4`,
            target: "_blank",
            rel: "noopener",
            "aria-describedby": titleId,
          },
          "Download",
        ),
      );
    }
    if (video.saved_to_r2) {
      actions.append(el("p", { className: "saved-mark" }, "✓ Saved to Library"));
    } else if (status === "completed") {
      actions.append(
        el(
          "button",
          {
            type: "button",
            className: "save",
            "data-action": "save",
            "aria-describedby": titleId,
            disabled: saving,
            "aria-busy": saving ? "true" : null,
            onclick: () => save(video),
          },
          saving ? "Saving…" : "Save to Library",
        ),
      );
    }

    const notes = [];
    if (status === "failed") notes.push(el("p", { className: "note note-error" }, `Generation failed: ${video.error || "no reason given"}.`));
    if (status === "pending" || status === "processing") {
      notes.push(el("p", { className: "note" }, "This card updates itself when the video is ready."));
    }
    if (!video.saved_to_r2 && video.save_error && !saving) {
      notes.push(el("p", { className: "note note-error" }, `Last save failed: ${video.save_error}.`));
    }

    return el(
      "li",
      { className: `card card-${status}`, "data-video-id": video.video_id, "data-status": status, "data-signature": signature(video) },
      el(
        "article",
        { "aria-labelledby": titleId },
        el("div", { className: "thumb" }, thumbnail),
        el("div", { className: "card-body" }, el("h3", { id: titleId, tabindex: "-1", title: video.prompt || "" }, shorten(video.prompt)), details, notes, actions),
      ),
    );
  }

  function placeholder(status) {
    const text = status === "failed" ? "No video" : status === "completed" ? "No thumbnail" : "Generating…";
    return el("div", { className: `placeholder placeholder-${status}` }, el("span", { className: "icon", "aria-hidden": "true" }), el("span", {}, text));
  }

  // -- polling: pending/processing videos, and saves still running server-side ----------------------------

  function watched() {
    const ids = [...state.videos.values()].filter((v) => v.status === "pending" || v.status === "processing").map((v) => v.video_id);
    for (const [id, watch] of state.saving) if (watch.background) ids.push(id);
    return [...new Set(ids)];
  }

  function schedulePoll() {
    if (state.pollTimer || !state.token || watched().length === 0) return;
    state.pollTimer = setTimeout(pollOnce, POLL_MS);
  }

  function stopPolling() {
    clearTimeout(state.pollTimer);
    state.pollTimer = null;
  }

  async function pollOnce() {
    state.pollTimer = null;
    const epoch = state.epoch;
    await Promise.all(
      watched().map(async (id) => {
        try {
          const video = await api("GET", `/api/video/${encodeURIComponent(id)}`);
          if (epoch !== state.epoch) return;
          const watch = state.saving.get(id);
          if (watch && watch.background) settleBackgroundSave(video, watch);
          updateCard(video);
        } catch (error) {
          if (epoch !== state.epoch) return;
          if (error.status === 404) {
            state.videos.delete(id);
            state.saving.delete(id);
            renderList();
          }
        }
      }),
    );
    if (epoch === state.epoch) schedulePoll();
  }

  function settleBackgroundSave(video, watch) {
    if (video.saved_to_r2) {
      state.saving.delete(video.video_id);
      toast("success", "Video saved to library!");
      loadUsage();
    } else if ((video.save_error && video.save_error !== watch.saveError) || Date.now() > watch.until) {
      state.saving.delete(video.video_id);
      toast("error", `Could not save “${shorten(video.prompt, 40)}”: ${video.save_error || "the save did not finish"}.`);
    }
  }

  // -- actions -------------------------------------------------------------------------------------------------

  async function save(video) {
    const epoch = state.epoch;
    state.saving.set(video.video_id, { background: false, saveError: video.save_error, until: Date.now() + SAVE_WATCH_MS });
    updateCard({ ...video });
    try {
      await api("POST", "/api/video/save-to-library", { video_id: video.video_id, campaign_id: video.campaign_id });
      if (epoch !== state.epoch) return;
      state.saving.delete(video.video_id);
      toast("success", "Video saved to library!");
      await Promise.all([loadList(), loadUsage()]);
      // The Save button is gone with the old card: keep keyboard users on the same video.
      if (document.activeElement === document.body) document.getElementById(`title-${video.video_id}`)?.focus();
    } catch (error) {
      if (epoch !== state.epoch) return;
      if (error.code === "save_in_progress" || error.status === 503 || error.status === 504) {
        // A big file outlasts API Gateway's 30 s: the save carries on; watch the record until it lands.
        state.saving.get(video.video_id).background = true;
        toast("info", "Saving continues in the background: this card updates when it is done.");
        schedulePoll();
        return;
      }
      state.saving.delete(video.video_id);
      if (error.status === 401) return;
      const hint = ERROR_HINTS[error.code];
      toast("error", `Could not save “${shorten(video.prompt, 40)}”: ${hint ? `${hint} (${error.message})` : error.message}.`);
      try {
        updateCard(await api("GET", `/api/video/${encodeURIComponent(video.video_id)}`));
      } catch {
        updateCard(state.videos.get(video.video_id) || video);
      }
    }
  }

  function play(video) {
    ui.playerTitle.textContent = shorten(video.prompt, 80);
    ui.playerVideo.src = video.video_url;
    ui.player.showModal();
    ui.playerVideo.play().catch(() => {}); // autoplay may be refused; the controls are there
  }

  ui.player.addEventListener("close", () => {
    ui.playerVideo.pause();
    ui.playerVideo.removeAttribute("src");
    ui.playerVideo.load();
  });

  ui.generateForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = ui.generateForm.elements;
    const [model, taskType] = form.model.value.split("|");
    const prompt = form.prompt.value;
    const epoch = state.epoch;
    ui.generateButton.disabled = true;
    ui.generateButton.textContent = "Requesting…";
    try {
      const video = await api("POST", "/api/video/generate", {
        campaign_id: state.campaign,
        prompt, // the API trims it, and says so when nothing is left
        model,
        task_type: taskType,
        options: {},
      });
      if (epoch !== state.epoch) return;
      state.videos = new Map([[video.video_id, video], ...state.videos]);
      renderList();
      if (form.prompt.value === prompt) form.prompt.value = ""; // unless the user is already typing the next one
      toast("info", "Video requested: its card below updates itself when it is ready.");
    } catch (error) {
      if (error.status !== 401) toast("error", `Could not generate the video: ${error.message}.`);
    } finally {
      ui.generateButton.disabled = false;
      ui.generateButton.textContent = "Generate";
    }
  });

  ui.campaignForm.addEventListener("submit", (event) => {
    event.preventDefault();
    state.campaign = ui.campaignId.value.trim();
    sessionStorage.setItem(STORAGE.campaign, state.campaign);
    state.epoch += 1;
    stopPolling();
    state.saving.clear();
    state.videos.clear();
    ui.videos.replaceChildren();
    loadList();
    loadUsage();
  });

  ui.refresh.addEventListener("click", () => {
    loadList();
    loadUsage();
  });
  ui.loadMore.addEventListener("click", () => loadList({ more: true }));

  // -- start --------------------------------------------------------------------------------------------------

  ui.localSignIn.hidden = !LOCAL_SIGN_IN;
  if (state.token) showLibrary();
  else signOut();
})();
