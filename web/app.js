// The video library page: plain JavaScript, no build step. It talks to the library API (README, "The library
// page") with the user's token in an Authorization header; the token is kept in sessionStorage only.
"use strict";

(() => {
  const config = window.VIDEO_LIBRARY_CONFIG || {};
  const API_BASE = String(config.apiBaseUrl || "").replace(/\/+$/, "");
  const LOCAL_SIGN_IN = config.localSignIn !== false;
  // The API says how many attempts a save gets (save_max_attempts on every video); older answers fall back to 5.
  const maxAttempts = (video) => Number(video.save_max_attempts) > 0 ? Number(video.save_max_attempts) : 5;
  const PAGE_SIZE = 24;
  const POLL_MS = 2000;
  const POLL_CONCURRENCY = 6; // requests in flight per polling round: a bulk save must not flood the API
  const BULK_MAX = 100; // the save route's limit per request
  const BULK_ROUNDS = 20; // "Save all ready" asks again while the API says there are more, up to this many times
  const TOAST_MS = 8000;
  const TOASTS_KEPT = 3;
  const STORAGE = { token: "videoLibrary.token", user: "videoLibrary.user", campaign: "videoLibrary.campaign" };
  const STATUS_TEXT = { pending: "Pending", processing: "Generating…", completed: "Completed", failed: "Failed" };
  const STATUS_ICON = { pending: "◷", processing: "⟳", completed: "●", failed: "✕" };
  // The provider behind a PiAPI model, as people call it ("Qubico/hunyuan" → "Hunyuan").
  const PROVIDER_NAMES = { hunyuan: "Hunyuan", wanx: "Wan", wan: "Wan", kling: "Kling", luma: "Luma", hailuo: "Hailuo" };
  // Why a save did not happen, in words, by the API's error code (save_error.code, or a refused request's code).
  const REASONS = {
    source_gone: "the provider no longer has the file",
    source_too_large: "the video is larger than the library accepts",
    source_not_video: "the provider's file is not a video",
    source_not_allowed: "the video's address is not one the library may download from",
    source_refused: "the provider refused to hand over the file",
    source_unavailable: "the provider's file could not be downloaded just now",
    gave_up: "every attempt failed",
    timed_out: "the copy ran out of time",
    storage_unavailable: "the library's storage did not answer",
    save_queue_unavailable: "the save could not be queued",
    dependency_timeout: "the library's database did not answer in time",
    internal_error: "something went wrong on our side",
    record_update_failed: "the saved copy could not be recorded",
    wrong_state: "only completed videos can be saved",
    video_not_found: "the video is not in your library",
    save_in_progress: "the video is changing right now",
    not_configured: "saving is not set up on this server",
  };

  const $ = (id) => document.getElementById(id);
  const ui = {
    page: $("page"),
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
    generatePanel: $("generate-panel"),
    generateForm: $("generate-form"),
    generateButton: $("generate-button"),
    saveAllReady: $("save-all-ready"),
    refresh: $("refresh"),
    selectAll: $("select-all"),
    selectionCount: $("selection-count"),
    saveSelected: $("save-selected"),
    listStatus: $("list-status"),
    videos: $("videos"),
    loadMore: $("load-more"),
    player: $("player"),
    playerTitle: $("player-title"),
    playerVideo: $("player-video"),
    playerError: $("player-error"),
    toastStatus: $("toast-status"),
    toastAlert: $("toast-alert"),
  };

  const state = {
    token: sessionStorage.getItem(STORAGE.token),
    user: sessionStorage.getItem(STORAGE.user),
    campaign: sessionStorage.getItem(STORAGE.campaign) || "42",
    videos: new Map(), // video_id -> Video, in display order (newest first)
    nextCursor: null,
    selected: new Set(), // video ids ticked for a bulk action
    requesting: new Set(), // video ids whose save request is on its way
    bulkBusy: false,
    batches: [], // bulk saves still running: {key, label, pending: Set of ids, saved: [], failed: [], refusals: []}
    batchCount: 0,
    pollTimer: null,
    polling: false,
    epoch: 0, // bumped on sign-in/out and campaign change: answers to older requests are dropped
    outOfTouch: null, // why the last look at the videos got no answer (the cards may be behind), or null
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

  const videoPath = (id) => `/api/video/${encodeURIComponent(id)}`;

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

  const plural = (count, one, many = `${one}s`) => `${count} ${count === 1 ? one : many}`;

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
    return new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(amount);
  }

  // PiAPI reports the cost when the task ends: until then the record says null, or 0.
  function costOf(video) {
    const unknown = video.cost_usd === null || video.cost_usd === undefined;
    const pending = video.status === "pending" || video.status === "processing";
    return unknown || (pending && !video.cost_usd) ? "not known yet" : formatUsd(video.cost_usd);
  }

  const SHORT_DATE = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "numeric", minute: "2-digit" });
  const SHORT_DATE_OTHER_YEAR = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric" });
  const FULL_DATE = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "long" });

  function dateOf(iso) {
    const date = iso ? new Date(iso) : null;
    return date && !Number.isNaN(date.getTime()) ? date : null;
  }

  function timeElement(iso) {
    const date = dateOf(iso);
    if (!date) return el("span", {}, "unknown");
    const short = date.getFullYear() === new Date().getFullYear() ? SHORT_DATE : SHORT_DATE_OTHER_YEAR;
    return el("time", { datetime: iso, title: FULL_DATE.format(date) }, short.format(date));
  }

  // 75 s → "1:15"; 3,700 s → "1:01:40".
  function formatDuration(seconds) {
    const total = Math.max(0, Math.round(Number(seconds) || 0));
    const h = Math.floor(total / 3600);
    const m = Math.floor((total % 3600) / 60);
    const s = String(total % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
  }

  function elapsedSince(iso) {
    const date = dateOf(iso);
    return date ? formatDuration((Date.now() - date.getTime()) / 1000) : null; // a clock behind the server's: 0:00
  }

  function shorten(text, length = 60) {
    const value = String(text || "Untitled video");
    return value.length > length ? `${value.slice(0, length - 1)}…` : value;
  }

  function providerName(video) {
    const key = String(video.provider || String(video.model || "").split("/").pop() || "").trim().toLowerCase();
    if (!key) return "unknown";
    return PROVIDER_NAMES[key] || key.charAt(0).toUpperCase() + key.slice(1);
  }

  function reasonInWords(code, message) {
    const words = REASONS[code];
    if (words) return words;
    return message ? String(message) : "no reason was given";
  }

  const capitalised = (text) => text.charAt(0).toUpperCase() + text.slice(1);

  // -- toasts: what happened, once; in their own strip below the page, so they never cover it ----------------

  // ``key``: a toast that stands for one thing (a bulk save) replaces the one it shows before, wherever that is.
  function toast(kind, message, key = message) {
    const region = kind === "error" ? ui.toastAlert : ui.toastStatus;
    // The same message again (a repeated click, a second answer) restarts the one on show instead of adding another.
    for (const shown of [...ui.toastAlert.children, ...ui.toastStatus.children]) {
      if (shown.dataset.key === key || shown.dataset.message === message) shown.remove();
    }
    const item = el(
      "div",
      { className: `toast toast-${kind}`, "data-key": key, "data-message": message },
      el("span", { className: "toast-icon", "aria-hidden": "true" }, kind === "error" ? "⚠" : kind === "success" ? "✓" : "ℹ"),
      el("p", { className: "toast-text" }, message),
      el("button", { type: "button", className: "toast-close", "aria-label": "Dismiss", onclick: () => item.remove() }, "×"),
    );
    region.append(item);
    while (region.children.length > TOASTS_KEPT) region.firstElementChild.remove();
    // Errors stay until dismissed; other messages go after a while.
    if (kind !== "error") setTimeout(() => item.remove(), TOAST_MS);
  }

  function clearToasts() {
    ui.toastStatus.replaceChildren();
    ui.toastAlert.replaceChildren();
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

  function forgetVideos() {
    state.epoch += 1;
    stopPolling();
    state.videos.clear();
    state.selected.clear();
    state.requesting.clear();
    state.batches = [];
    state.bulkBusy = false;
    state.outOfTouch = null;
    state.nextCursor = null;
    ui.videos.replaceChildren();
    renderSelection();
  }

  function signOut() {
    state.token = null;
    state.user = null;
    sessionStorage.removeItem(STORAGE.token);
    sessionStorage.removeItem(STORAGE.user);
    forgetVideos();
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
    // The page scrolls in its own area: with nothing in it focused, Page Down and the arrows would scroll nothing.
    if (!ui.library.contains(document.activeElement)) ui.page.focus({ preventScroll: true });
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

  // -- where a save stands ------------------------------------------------------------------------------------

  // The API's save_state (none / queued / saving / saved / failed); a view without one is read from saved_to_r2.
  function saveStateOf(video) {
    if (video.saved_to_r2) return "saved";
    return ["queued", "saving", "saved", "failed"].includes(video.save_state) ? video.save_state : "none";
  }

  const saveInProgress = (video) => ["queued", "saving"].includes(saveStateOf(video));

  function saveErrorOf(video) {
    const error = video.save_error;
    if (!error) return null;
    if (typeof error === "string") return { code: "save_failed", message: error };
    return { code: String(error.code || "save_failed"), message: String(error.message || "") };
  }

  // -- receiving videos: every answer goes through here, so a save's outcome is announced once ------------------

  // Changes a poll round or a list load brings: announced together, so five saves landing at once make one toast.
  function newOutcomes() {
    return { saved: [], failed: [] };
  }

  function receive(video, outcomes) {
    const before = state.videos.get(video.video_id);
    state.videos.set(video.video_id, video);
    if (!before || !saveInProgress(before)) return; // only a save this page watched is news
    const now = saveStateOf(video);
    if (now === "saved") outcomes.saved.push(video);
    else if (now === "failed") outcomes.failed.push(video);
  }

  function announce(outcomes) {
    // A bulk save's videos are summed up in its own toast once they have all landed.
    const inBatch = (video) => {
      const batch = state.batches.find((b) => b.pending.has(video.video_id));
      if (!batch) return false;
      batch.pending.delete(video.video_id);
      (saveStateOf(video) === "saved" ? batch.saved : batch.failed).push(video);
      return true;
    };
    outcomes.saved = outcomes.saved.filter((video) => !inBatch(video));
    outcomes.failed = outcomes.failed.filter((video) => !inBatch(video));
    const finished = state.batches.filter((batch) => batch.pending.size === 0);
    state.batches = state.batches.filter((batch) => batch.pending.size > 0);
    for (const batch of finished) announceBatch(batch);
    if (outcomes.saved.length === 1) {
      toast("success", `Video saved to library: “${shorten(outcomes.saved[0].prompt, 40)}”.`);
    } else if (outcomes.saved.length > 1) {
      toast("success", `${plural(outcomes.saved.length, "video")} saved to library.`);
    }
    for (const video of outcomes.failed) {
      const error = saveErrorOf(video);
      toast("error", `Could not save “${shorten(video.prompt, 40)}”: ${reasonInWords(error?.code, error?.message)}.`);
    }
    if (outcomes.saved.length || finished.some((batch) => batch.saved.length)) loadUsage();
  }

  function announceBatch(batch) {
    const parts = [];
    if (batch.saved.length) parts.push(`${plural(batch.saved.length, "video")} saved to library`);
    // Refused at once or failed on the way: either way not saved, and why.
    const notSaved = [
      ...batch.refusals,
      ...batch.failed.map((video) => ({ status: 400, error: saveErrorOf(video) })),
    ];
    if (notSaved.length) parts.push(`${notSaved.length} not saved: ${describeRefusals(notSaved)}`);
    if (parts.length) toast(notSaved.length ? "error" : "success", `${batch.label}: ${parts.join(", ")}.`, batch.key);
  }

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
      const outcomes = newOutcomes();
      const previous = state.videos;
      if (!more) state.videos = new Map();
      for (const video of page.items) {
        if (!more && previous.has(video.video_id)) state.videos.set(video.video_id, previous.get(video.video_id));
        receive(video, outcomes);
      }
      if (!more) {
        for (const id of [...state.selected]) if (!state.videos.has(id)) state.selected.delete(id);
      }
      state.nextCursor = page.next_cursor;
      state.outOfTouch = null;
      renderList();
      announce(outcomes);
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
    const cards = [...state.videos.values()].map((video) => renderCard(video));
    ui.videos.replaceChildren(...cards);
    ui.loadMore.hidden = !state.nextCursor;
    renderListStatus();
    renderSelection();
    schedulePoll();
  }

  function renderListStatus() {
    const count = state.videos.size;
    const listed = count
      ? `${plural(count, "video")} in campaign ${state.campaign}${state.nextCursor ? " (more below)" : ""}.`
      : `No videos in campaign ${state.campaign} yet: generate one above.`;
    ui.listStatus.classList.toggle("list-status-problem", Boolean(state.outOfTouch));
    ui.listStatus.textContent = state.outOfTouch
      ? `${listed} The cards may be out of date: ${state.outOfTouch}; still trying.`
      : listed;
  }

  // A look at the videos got an answer (or none): say so when that changes.
  function inTouch(problem) {
    if (state.outOfTouch === problem) return;
    state.outOfTouch = problem;
    renderListStatus();
  }

  const cardOf = (id) => ui.videos.querySelector(`[data-video-id="${CSS.escape(id)}"]`);

  // Refresh one card in place: the picture stays (a first frame is not fetched again), focus stays where it was.
  function updateCard(video) {
    const existing = cardOf(video.video_id);
    if (!existing) {
      renderList();
      return;
    }
    if (existing.dataset.signature === cardSignature(video)) {
      tickElapsed(existing);
      return;
    }
    const focused = existing.contains(document.activeElement) ? document.activeElement.dataset.action : null;
    const keepThumb = existing.dataset.thumb === thumbSignature(video) ? existing.querySelector(".thumb") : null;
    const card = renderCard(video, keepThumb);
    existing.replaceWith(card);
    if (focused) {
      const again = card.querySelector(`[data-action="${focused}"]`);
      (again || card.querySelector("h3")).focus();
    }
  }

  const cardSignature = (video) =>
    JSON.stringify([video, state.selected.has(video.video_id), state.requesting.has(video.video_id)]);

  // Presigned URLs change with every answer; the picture only needs fetching again when the object does.
  const withoutQuery = (url) => String(url || "").split("?")[0];
  const playable = (video) => video.status === "completed" && Boolean(video.video_url);
  const thumbSignature = (video) =>
    JSON.stringify([video.status, withoutQuery(video.thumbnail_url), withoutQuery(video.video_url), video.duration_s]);

  function renderCard(video, keptThumb = null) {
    const titleId = `title-${video.video_id}`;
    const saveState = saveStateOf(video);
    const card = el(
      "li",
      {
        className: `card card-${video.status}`,
        "data-video-id": video.video_id,
        "data-status": video.status,
        "data-save-state": saveState,
        "data-signature": cardSignature(video),
        "data-thumb": thumbSignature(video),
      },
      el(
        "article",
        { "aria-labelledby": titleId },
        keptThumb || renderThumb(video),
        el(
          "div",
          { className: "card-body" },
          el(
            "div",
            { className: "card-head" },
            el("input", {
              type: "checkbox",
              className: "select",
              "data-action": "select",
              "aria-label": `Select ${shorten(video.prompt, 80)}`,
              checked: state.selected.has(video.video_id),
              onchange: (event) => select(video.video_id, event.target.checked),
            }),
            el("h3", { id: titleId, tabindex: "-1", title: video.prompt || "" }, shorten(video.prompt)),
          ),
          renderFacts(video, saveState),
          renderSaveProgress(video, saveState),
          renderNotes(video),
          renderActions(video, saveState, titleId),
        ),
      ),
    );
    return card;
  }

  function renderThumb(video) {
    const picture = playable(video) ? renderPicture(video) : placeholder(video.status);
    const children = [picture];
    if (playable(video)) {
      children.push(el("span", { className: "play-icon", "aria-hidden": "true" }));
      if (video.duration_s) {
        children.push(el("span", { className: "duration-badge", "aria-hidden": "true" }, formatDuration(video.duration_s)));
      }
      const name = `Play ${shorten(video.prompt, 80)}${video.duration_s ? ` (${formatDuration(video.duration_s)})` : ""}`;
      return el(
        "div",
        { className: "thumb" },
        el("button", { type: "button", className: "thumb-button", "data-action": "play", "aria-label": name, onclick: () => play(video.video_id) }, children),
      );
    }
    return el("div", { className: "thumb" }, children);
  }

  // The provider's thumbnail, or else the video's own first frame (Hunyuan and Wan give no thumbnail).
  function renderPicture(video) {
    if (video.thumbnail_url) {
      return el("img", {
        src: video.thumbnail_url,
        alt: "",
        loading: "lazy",
        onerror: (event) => event.target.replaceWith(firstFrame(video)),
      });
    }
    return firstFrame(video);
  }

  function firstFrame(video) {
    const frame = el("video", {
      className: "first-frame",
      muted: true,
      preload: "metadata",
      playsinline: true,
      disablepictureinpicture: true,
      tabindex: "-1",
      "aria-hidden": "true",
      "data-src": `${video.video_url}#t=0.1`,
      onerror: () => frame.replaceWith(placeholder("unplayable")),
    });
    frame.muted = true; // the attribute alone does not mute an element made by script
    whenNearView(frame);
    return frame;
  }

  // Fetch a first frame only when its card comes near the screen: a page of 24 videos is not 24 downloads.
  const nearView =
    "IntersectionObserver" in window
      ? new IntersectionObserver(
          (entries) => {
            for (const entry of entries) {
              if (!entry.isIntersecting) continue;
              nearView.unobserve(entry.target);
              entry.target.src = entry.target.dataset.src;
            }
          },
          { root: ui.page, rootMargin: "300px" },
        )
      : null;

  function whenNearView(frame) {
    if (nearView) nearView.observe(frame);
    else frame.src = frame.dataset.src;
  }

  function placeholder(status) {
    const text = {
      failed: "No video",
      completed: "No picture",
      unplayable: "No preview",
    }[status] || "Generating…";
    return el("div", { className: `placeholder placeholder-${status}` }, el("span", { className: "icon", "aria-hidden": "true" }), el("span", {}, text));
  }

  function renderFacts(video, saveState) {
    const provider = el("span", { title: [video.model, video.task_type].filter(Boolean).join(" · ") || null }, providerName(video));
    return el(
      "dl",
      { className: "facts" },
      el("dt", {}, "Status"),
      el(
        "dd",
        {},
        el(
          "span",
          { className: `badge badge-${video.status}` },
          el("span", { "aria-hidden": "true" }, `${STATUS_ICON[video.status] || "?"} `),
          el("span", { className: "status-text" }, STATUS_TEXT[video.status] || video.status),
        ),
      ),
      el("dt", {}, "Provider"),
      el("dd", {}, provider),
      el("dt", {}, "Cost"),
      el("dd", { className: "cost" }, costOf(video)),
      el("dt", {}, "Created"),
      el("dd", { className: "date" }, timeElement(video.created_at)),
      saveState === "saved" && video.size_bytes !== null && video.size_bytes !== undefined
        ? [el("dt", {}, "Size"), el("dd", {}, formatBytes(video.size_bytes))]
        : null,
      video.width && video.height ? [el("dt", {}, "Resolution"), el("dd", {}, `${video.width} × ${video.height}`)] : null,
    );
  }

  // queued → saving (a bar with percent, size, elapsed) → saved; or failed with why; "Retrying..." between attempts.
  function renderSaveProgress(video, saveState) {
    if (video.status !== "completed") return null;
    const error = saveErrorOf(video);
    const attempts = Number(video.save_attempts) || 0;
    if (saveState === "failed") {
      return el(
        "div",
        { className: "save-status save-failed" },
        el("p", { className: "save-line" }, `Not saved: ${reasonInWords(error?.code, error?.message)}.`),
        error?.message ? el("p", { className: "save-detail" }, capitalised(error.message)) : null,
      );
    }
    if (saveState === "queued") {
      const line = error
        ? `Retrying, attempt ${Math.min(attempts + 1, maxAttempts(video))} of ${maxAttempts(video)}: ${reasonInWords(error.code, error.message)}.`
        : "Queued for saving: the copy starts in a moment.";
      return el(
        "div",
        { className: `save-status ${error ? "save-retrying" : "save-queued"}` },
        el("p", { className: "save-line" }, line),
        error?.message ? el("p", { className: "save-detail" }, capitalised(error.message)) : null,
        progressBar(video, null),
      );
    }
    if (saveState !== "saving") return null;
    const copied = Number(video.bytes_copied) || 0;
    const size = Number(video.size_bytes) || 0;
    const percent = size > 0 ? Math.min(100, Math.floor((copied / size) * 100)) : null;
    const finishing = size > 0 && copied >= size;
    let amount = size > 0 ? `${formatBytes(copied)} of ${formatBytes(size)}` : `${formatBytes(copied)} so far`;
    if (finishing) amount = formatBytes(size); // every byte is across; the storage is putting the parts together
    const attempt = error && attempts > 1 ? ` (attempt ${attempts} of ${maxAttempts(video)})` : "";
    const elapsed = elapsedSince(video.save_started_at);
    return el(
      "div",
      { className: "save-status save-saving" },
      el(
        "p",
        { className: "save-line" },
        el("span", { className: "save-what" }, `${finishing ? "Finishing" : "Saving"}${attempt}: `),
        el("span", { className: "save-percent" }, percent === null ? "" : `${percent}% · `),
        el("span", { className: "save-amount" }, amount),
        elapsed === null ? null : [" · ", el("span", { className: "save-elapsed", "data-since": video.save_started_at }, elapsed)],
      ),
      progressBar(video, percent, amount),
    );
  }

  function progressBar(video, percent, amount) {
    const known = percent !== null && percent !== undefined;
    return el(
      "div",
      {
        className: `progress${known ? "" : " progress-indeterminate"}`,
        role: "progressbar",
        "aria-label": `Saving ${shorten(video.prompt, 60)}`,
        "aria-valuemin": "0",
        "aria-valuemax": "100",
        "aria-valuenow": known ? String(percent) : null,
        "aria-valuetext": known ? `${percent}%, ${amount}` : "waiting to start",
      },
      el("div", { className: "progress-fill", style: known ? `width: ${percent}%` : null }),
    );
  }

  function tickElapsed(card) {
    for (const node of card.querySelectorAll("[data-since]")) node.textContent = elapsedSince(node.dataset.since) || "";
  }

  function renderNotes(video) {
    const notes = [];
    if (video.status === "failed") notes.push(el("p", { className: "note note-error" }, `Generation failed: ${video.error || "no reason given"}.`));
    if (video.status === "pending" || video.status === "processing") {
      notes.push(el("p", { className: "note" }, "This card updates itself when the video is ready."));
    }
    return notes;
  }

  function renderActions(video, saveState, titleId) {
    const actions = el("div", { className: "actions" });
    const requesting = state.requesting.has(video.video_id);
    if (video.status === "completed" && (video.video_raw_url || video.video_url)) {
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
    if (saveState === "saved") {
      actions.append(el("p", { className: "saved-mark" }, "✓ Saved to Library"));
    } else if (video.status === "completed" && (saveState === "none" || saveState === "failed")) {
      const retry = saveState === "failed";
      actions.append(
        el(
          "button",
          {
            type: "button",
            className: "save",
            "data-action": "save",
            "aria-describedby": titleId,
            disabled: requesting,
            "aria-busy": requesting ? "true" : null,
            onclick: () => save(video.video_id),
          },
          requesting ? "Asking…" : retry ? "Retry" : "Save to Library",
        ),
      );
    }
    return actions;
  }

  // -- selection ---------------------------------------------------------------------------------------------

  function select(id, checked) {
    if (checked) state.selected.add(id);
    else state.selected.delete(id);
    const card = cardOf(id);
    if (card) card.dataset.signature = cardSignature(state.videos.get(id));
    renderSelection();
  }

  function renderSelection() {
    const count = state.selected.size;
    const total = state.videos.size;
    ui.selectionCount.textContent = count ? `${count} selected` : "None selected";
    ui.saveSelected.disabled = count === 0 || state.bulkBusy;
    ui.saveAllReady.disabled = state.bulkBusy;
    ui.selectAll.checked = total > 0 && count === total;
    ui.selectAll.indeterminate = count > 0 && count < total;
    ui.selectAll.disabled = total === 0;
  }

  ui.selectAll.addEventListener("change", () => {
    const all = ui.selectAll.checked;
    for (const id of state.videos.keys()) {
      if (all) state.selected.add(id);
      else state.selected.delete(id);
      const box = cardOf(id)?.querySelector("input.select");
      if (box) box.checked = all;
      const card = cardOf(id);
      if (card) card.dataset.signature = cardSignature(state.videos.get(id));
    }
    renderSelection();
  });

  // -- polling: videos being generated, and saves queued or running; never while the tab is hidden -----------

  function watched() {
    return [...state.videos.values()]
      .filter((v) => v.status === "pending" || v.status === "processing" || saveInProgress(v))
      .map((v) => v.video_id);
  }

  function schedulePoll() {
    if (state.pollTimer || state.polling || !state.token || document.visibilityState === "hidden") return;
    if (watched().length === 0) return;
    state.pollTimer = setTimeout(pollOnce, POLL_MS);
  }

  function stopPolling() {
    clearTimeout(state.pollTimer);
    state.pollTimer = null;
  }

  async function pollOnce() {
    state.pollTimer = null;
    if (document.visibilityState === "hidden" || state.polling) return;
    state.polling = true;
    const epoch = state.epoch;
    try {
      await refreshVideos(watched());
    } finally {
      state.polling = false;
    }
    if (epoch === state.epoch) schedulePoll();
  }

  // Fetch these videos again (a few at a time) and show what changed.
  async function refreshVideos(ids) {
    const epoch = state.epoch;
    const outcomes = newOutcomes();
    const queue = [...ids];
    const fetchNext = async () => {
      while (queue.length && epoch === state.epoch) {
        const id = queue.shift();
        try {
          const video = await api("GET", videoPath(id));
          if (epoch !== state.epoch || !state.videos.has(id)) continue;
          inTouch(null);
          receive(video, outcomes);
          updateCard(video);
        } catch (error) {
          if (epoch !== state.epoch) continue;
          if (error.status === 0 || error.status >= 500) inTouch(error.message);
          if (error.status === 404) {
            state.videos.delete(id);
            state.selected.delete(id);
            for (const batch of state.batches) batch.pending.delete(id);
            cardOf(id)?.remove();
            renderSelection();
            renderListStatus();
          }
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(POLL_CONCURRENCY, queue.length) }, fetchNext));
    if (epoch === state.epoch) announce(outcomes);
  }

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") {
      stopPolling();
    } else if (state.token && !state.polling) {
      stopPolling();
      pollOnce(); // catch up at once: the saves went on while nobody looked
    }
  });

  // -- saving ----------------------------------------------------------------------------------------------

  // Merge a save's status (the save route's answer, or a bulk result) into the video as the page knows it.
  function applySaveStatus(id, status) {
    const video = state.videos.get(id);
    if (!video) return null;
    const merged = { ...video, ...status };
    if (status.save_state === "queued" && !("save_error" in status)) merged.save_error = null;
    state.videos.set(id, merged);
    return merged;
  }

  async function save(id) {
    const epoch = state.epoch;
    const video = state.videos.get(id);
    if (!video || state.requesting.has(id)) return;
    state.requesting.add(id);
    updateCard(video);
    try {
      const status = await api("POST", "/api/video/save-to-library", { video_id: id, campaign_id: video.campaign_id });
      if (epoch !== state.epoch) return;
      state.requesting.delete(id);
      const merged = applySaveStatus(id, status);
      if (merged && saveStateOf(merged) === "saved") {
        // Saved already (or at once): the whole view carries the library's URLs.
        await refreshVideos([id]);
        toast("success", `Video saved to library: “${shorten(video.prompt, 40)}”.`);
        loadUsage();
      } else if (merged) {
        updateCard(merged);
      }
    } catch (error) {
      if (epoch !== state.epoch) return;
      state.requesting.delete(id);
      if (error.status === 401) return;
      // No answer (a network cut, API Gateway's 30 s) may still have queued the save, and "in progress" means
      // another tab or a bulk save did: then the card follows that save, and there is nothing to complain about.
      const mayBeUnderWay = [0, 503, 504].includes(error.status) || error.code === "save_in_progress";
      await refreshVideos([id]);
      const now = state.videos.get(id);
      if (mayBeUnderWay && now && saveInProgress(now)) return;
      updateCard(now || video);
      const why = REASONS[error.code] ? `${REASONS[error.code]} (${error.message})` : error.message;
      toast("error", `Could not save “${shorten(video.prompt, 40)}”: ${why}.`);
    } finally {
      schedulePoll();
    }
  }

  function describeRefusals(results) {
    const counts = new Map();
    for (const result of results) {
      if (result.status < 400) continue;
      const words = reasonInWords(result.error?.code, result.error?.message);
      counts.set(words, (counts.get(words) || 0) + 1);
    }
    return [...counts].map(([words, count]) => (count > 1 ? `${words} (${count})` : words)).join("; ");
  }

  // Many saves in one or more requests; one toast sums them up.
  async function saveMany(label, requests) {
    const epoch = state.epoch;
    state.batchCount += 1;
    const key = `bulk-${state.batchCount}`;
    state.bulkBusy = true;
    renderSelection();
    const totals = { queued: 0, in_progress: 0, already_saved: 0, refused: 0 };
    const results = [];
    let failure = null;
    try {
      for await (const answer of requests()) {
        if (epoch !== state.epoch) return;
        for (const key of Object.keys(totals)) totals[key] += Number(answer[key]) || 0;
        for (const result of answer.results || []) {
          results.push(result);
          if (result.save_state) applySaveStatus(result.video_id, { save_state: result.save_state });
        }
      }
    } catch (error) {
      failure = error;
    } finally {
      if (epoch === state.epoch) {
        state.bulkBusy = false;
        renderSelection();
      }
    }
    if (epoch !== state.epoch || failure?.status === 401) return;
    // What the answers said is merged; the views (URLs, progress) come with the next look at each video.
    const known = results.map((r) => r.video_id).filter((id) => state.videos.has(id));
    for (const id of known) updateCard(state.videos.get(id));
    const pending = results.filter((r) => ["queued", "saving"].includes(r.save_state) && state.videos.has(r.video_id));
    if (pending.length) {
      const refusals = results.filter((r) => r.status >= 400);
      state.batches.push({ key, label, pending: new Set(pending.map((r) => r.video_id)), saved: [], failed: [], refusals });
    }
    const parts = [];
    if (totals.queued) parts.push(`${plural(totals.queued, "save")} started`);
    if (totals.in_progress) parts.push(`${totals.in_progress} already under way`);
    if (totals.already_saved) parts.push(`${totals.already_saved} already saved`);
    if (totals.refused) parts.push(`${totals.refused} not saved: ${describeRefusals(results)}`);
    if (failure) {
      const done = parts.length ? ` (before that: ${parts.join(", ")})` : "";
      toast("error", `${label}: the request failed: ${failure.message}${done}.`, key);
    } else if (!results.length) {
      toast("info", `${label}: no video in campaign ${state.campaign} is waiting to be saved.`, key);
    } else {
      const kind = totals.refused && totals.refused === results.length ? "error" : "info";
      toast(kind, `${label}: ${parts.join(", ")}.`, key);
    }
    await refreshVideos(known);
    schedulePoll();
  }

  ui.saveAllReady.addEventListener("click", () => {
    const campaign = state.campaign;
    saveMany("Save all ready", async function* () {
      // The API saves up to 100 per request and says when more remain (those are no longer "ready" once queued).
      for (let round = 0; round < BULK_ROUNDS; round += 1) {
        const answer = await api("POST", "/api/video/save-to-library", { campaign_id: campaign, all_ready: true });
        yield answer;
        if (!answer.more || !answer.queued) break;
      }
    });
  });

  ui.saveSelected.addEventListener("click", () => {
    const ids = [...state.selected];
    state.selected.clear();
    for (const id of ids) {
      const box = cardOf(id)?.querySelector("input.select");
      if (box) box.checked = false;
    }
    renderSelection();
    saveMany("Save selected", async function* () {
      for (let start = 0; start < ids.length; start += BULK_MAX) {
        yield await api("POST", "/api/video/save-to-library", { video_ids: ids.slice(start, start + BULK_MAX) });
      }
    });
  });

  // -- playing ----------------------------------------------------------------------------------------------------

  function play(id) {
    const video = state.videos.get(id);
    if (!video || !video.video_url) return;
    ui.playerTitle.textContent = shorten(video.prompt, 80);
    ui.playerError.hidden = true;
    ui.playerVideo.hidden = false;
    ui.playerVideo.src = video.video_url;
    ui.player.showModal();
    ui.playerVideo.play().catch(() => {}); // autoplay may be refused; the controls are there
  }

  // A file that cannot be played (gone at the provider, not a video) says so instead of showing a black box.
  ui.playerVideo.addEventListener("error", () => {
    if (!ui.playerVideo.getAttribute("src")) return;
    ui.playerVideo.hidden = true;
    ui.playerError.textContent = "This video cannot be played: its file could not be loaded.";
    ui.playerError.hidden = false;
  });

  ui.player.addEventListener("close", () => {
    ui.playerVideo.pause();
    ui.playerVideo.removeAttribute("src");
    ui.playerVideo.load();
  });

  // -- generating -------------------------------------------------------------------------------------------------

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
    forgetVideos();
    clearToasts();
    loadList();
    loadUsage();
  });

  ui.refresh.addEventListener("click", () => {
    loadList();
    loadUsage();
  });
  ui.loadMore.addEventListener("click", () => loadList({ more: true }));

  // -- start --------------------------------------------------------------------------------------------------

  // On a phone the videos come first: the generate form starts folded.
  if (window.matchMedia("(max-width: 640px)").matches) ui.generatePanel.open = false;
  ui.localSignIn.hidden = !LOCAL_SIGN_IN;
  if (state.token) showLibrary();
  else signOut();
})();
