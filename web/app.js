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
  const BULK_MAX = 100; // the save and delete routes' limit per request
  const BULK_ROUNDS = 20; // "Save all ready" asks again while the API says there are more, up to this many times
  const TOAST_MS = 8000;
  // A filtered listing may answer a short page (even an empty one) with a next_cursor: the page asks again until it
  // has a page's worth, the cursor is null, or this many requests went out (then "Load more" goes on).
  const FILL_ROUNDS = 10;
  const CAMPAIGN_PAGES = 10; // GET /api/video/campaigns answers 100 a page: up to 1,000 campaigns in the picker
  const SEARCH_DEBOUNCE_MS = 300;
  const DAY_MS = 24 * 60 * 60 * 1000;
  // What the API calls "expiring soon" (show=expiring): previews due within 3 days, or past their estimate.
  const EXPIRING_SOON_MS = 3 * DAY_MS;
  // check-previews takes at most 50 ids, and the API does not ask the provider again about a file it found within
  // 10 minutes: the page asks about a preview at most once in that time.
  const CHECK_MAX = 50;
  const CHECK_COOLDOWN_MS = 10 * 60 * 1000;
  const SHOW_VALUES = ["all", "saved", "unsaved", "failed", "expiring"];
  const SORT_VALUES = ["newest", "oldest", "largest"];
  const LARGEST_SHOWS = ["all", "saved"]; // sort=largest lists saved videos only: the API refuses it with the others
  const TOASTS_KEPT = 3;
  const STORAGE = { token: "videoLibrary.token", user: "videoLibrary.user", campaign: "videoLibrary.campaign" };
  const STATUS_TEXT = { pending: "Pending", processing: "Generating…", completed: "Completed", failed: "Failed", expired: "Expired" };
  const STATUS_ICON = { pending: "◷", processing: "⟳", completed: "●", failed: "✕", expired: "⊘" };
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
    preview_expired: "the preview has expired: the provider no longer has its file",
  };
  // Why a video was not deleted, in words, by the API's error code.
  const DELETE_REASONS = {
    save_in_progress: "a save is under way (delete it once the save has finished or failed)",
    video_busy: "the library is busy with it for a moment (try again in a minute)",
    database_busy: "the library's database is busy (try again in a moment)",
    dependency_timeout: "the library's database did not answer in time (try again)",
    internal_error: "something went wrong on our side",
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
    campaign: $("campaign"),
    newCampaignForm: $("new-campaign-form"),
    newCampaign: $("new-campaign"),
    newCampaignCancel: $("new-campaign-cancel"),
    usage: $("storage-usage"),
    generatePanel: $("generate-panel"),
    generateForm: $("generate-form"),
    generateButton: $("generate-button"),
    saveAllReady: $("save-all-ready"),
    refresh: $("refresh"),
    selectAll: $("select-all"),
    selectionCount: $("selection-count"),
    saveSelected: $("save-selected"),
    deleteSelected: $("delete-selected"),
    filters: [...document.querySelectorAll('input[name="show"]')],
    savedCount: $("saved-count"),
    sort: $("sort"),
    search: $("search"),
    listStatus: $("list-status"),
    videos: $("videos"),
    loadMore: $("load-more"),
    player: $("player"),
    playerTitle: $("player-title"),
    playerVideo: $("player-video"),
    playerError: $("player-error"),
    confirm: $("confirm"),
    confirmTitle: $("confirm-title"),
    confirmText: $("confirm-text"),
    confirmButton: $("confirm-button"),
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
    nav: { show: "all", sort: "newest", q: "" }, // what the list shows: the listing's show, sort and q
    listing: 0, // bumped by every list load: an answer to an older one (another filter, search...) is dropped
    counts: null, // the scope's saved videos and bytes, from the listing or the usage counters
    campaigns: [], // the caller's campaigns (GET /api/video/campaigns)
    deleting: new Set(), // video ids whose deletion is on its way
    checkedAt: new Map(), // video id -> when this page last asked the provider about its preview (ms)
    suspects: new Set(), // previews whose file failed to play: asked about with the next check
    checking: false,
    playing: null, // the video id in the player
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

  const startOfDay = (date) => new Date(date.getFullYear(), date.getMonth(), date.getDate()).getTime();

  // When a preview goes away, in words: "Expires in 5 days", "Expires tomorrow", "Expires today" (calendar days of
  // the reader's clock), or "May expire any moment" once the estimate has passed (the provider's retention is an
  // estimate: the file may still be there). Null for what does not expire: saved videos, unfinished generations,
  // previews already found gone.
  function expiryOf(video) {
    if (video.status !== "completed" || video.preview_expired || saveStateOf(video) === "saved") return null;
    const at = dateOf(video.preview_expires_at);
    if (!at) return null;
    const now = new Date();
    const left = at.getTime() - now.getTime();
    if (left <= 0) return { text: "May expire any moment", soon: true, at };
    const days = Math.round((startOfDay(at) - startOfDay(now)) / DAY_MS); // round: a day with a clock change
    const text = days <= 0 ? "Expires today" : days === 1 ? "Expires tomorrow" : `Expires in ${days} days`;
    return { text, soon: left <= EXPIRING_SOON_MS, at };
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
    state.deleting.clear();
    state.suspects.clear();
    state.batches = [];
    state.bulkBusy = false;
    state.outOfTouch = null;
    state.nextCursor = null;
    state.counts = null;
    ui.videos.replaceChildren();
    renderCounts();
    renderSelection();
  }

  function signOut() {
    state.token = null;
    state.user = null;
    sessionStorage.removeItem(STORAGE.token);
    sessionStorage.removeItem(STORAGE.user);
    forgetVideos();
    state.campaigns = [];
    state.checkedAt.clear();
    setNav({ show: "all", sort: "newest", q: "" });
    ui.library.hidden = true;
    ui.signedIn.hidden = true;
    ui.signIn.hidden = false;
  }

  function showLibrary() {
    ui.signIn.hidden = true;
    ui.signedIn.hidden = false;
    ui.signedInUser.textContent = state.user;
    ui.library.hidden = false;
    renderCampaigns();
    // The page scrolls in its own area: with nothing in it focused, Page Down and the arrows would scroll nothing.
    if (!ui.library.contains(document.activeElement)) ui.page.focus({ preventScroll: true });
    loadList();
    loadUsage();
    loadCampaigns();
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

  // What the listing asks for: the campaign, the filter, the order and the search (defaults left out).
  function listParams() {
    const { show, sort, q } = state.nav;
    return {
      campaign_id: state.campaign,
      show: show === "all" ? null : show,
      sort: sort === "newest" ? null : sort,
      q: q || null,
    };
  }

  // A page of videos. Filters and search may answer short pages (even empty ones) with a next_cursor: those are
  // normal, so the page asks again until it holds PAGE_SIZE videos or the cursor is null (within FILL_ROUNDS).
  // ``first``: a video just generated, shown first even if the listing's index has not caught up with it yet.
  async function loadList({ more = false, first = null } = {}) {
    const epoch = state.epoch;
    state.listing += 1;
    const listing = state.listing;
    const stale = () => epoch !== state.epoch || listing !== state.listing;
    const params = listParams();
    if (!more) ui.listStatus.textContent = "Loading videos…";
    ui.loadMore.disabled = true;
    try {
      let cursor = more ? state.nextCursor : null;
      const items = [];
      let counts = null;
      for (let round = 0; round < FILL_ROUNDS; round += 1) {
        const page = await api("GET", `/api/video/library?${query({ ...params, limit: PAGE_SIZE - items.length, cursor })}`);
        if (stale()) return;
        items.push(...page.items);
        cursor = page.next_cursor;
        counts = page.counts;
        if (!cursor || items.length >= PAGE_SIZE) break;
      }
      if (first && !items.some((video) => video.video_id === first.video_id)) items.unshift(first);
      const outcomes = newOutcomes();
      const previous = state.videos;
      if (!more) state.videos = new Map();
      for (const video of items) {
        if (!more && previous.has(video.video_id)) state.videos.set(video.video_id, previous.get(video.video_id));
        receive(video, outcomes);
      }
      if (!more) forgetWhatLeftTheList();
      state.nextCursor = cursor;
      state.counts = counts;
      state.outOfTouch = null;
      renderList();
      renderCounts();
      announce(outcomes);
      checkPreviews();
    } catch (error) {
      if (stale()) return;
      ui.listStatus.textContent = `Could not load the videos: ${error.message}.`;
    } finally {
      if (!stale()) ui.loadMore.disabled = false;
    }
  }

  // Another filter or search shows other videos: what the page held for those no longer listed goes (a bulk save's
  // summary then speaks for the videos still in view).
  function forgetWhatLeftTheList() {
    for (const id of [...state.selected]) if (!state.videos.has(id)) state.selected.delete(id);
    for (const batch of state.batches) for (const id of [...batch.pending]) if (!state.videos.has(id)) batch.pending.delete(id);
    state.batches = state.batches.filter((batch) => batch.pending.size > 0);
  }

  async function loadUsage() {
    const epoch = state.epoch;
    const campaign = state.campaign;
    try {
      const usage = await api("GET", `/api/video/storage-usage?${query({ campaign_id: campaign })}`);
      if (epoch !== state.epoch) return;
      // The same counters as the listing's counts, read after a save or a deletion changed them.
      state.counts = { saved_videos: usage.saved_videos, saved_bytes: usage.total_bytes };
      renderCounts();
      noteCampaignCounts(campaign, usage.saved_videos);
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

  // What the list holds, in words: "3 videos in campaign 42.", "1 saved video matching “boat” in campaign 42,
  // largest first (more below)."
  function describeList() {
    const count = state.videos.size;
    const { q, sort } = state.nav;
    // Largest first lists saved videos only, whatever the filter says.
    const show = sort === "largest" && state.nav.show === "all" ? "saved" : state.nav.show;
    const [one, many] = {
      all: ["video", "videos"],
      saved: ["saved video", "saved videos"],
      unsaved: ["unsaved video", "unsaved videos"],
      failed: ["failed video", "failed videos"],
      expiring: ["preview expiring soon", "previews expiring soon"],
    }[show];
    const matching = q ? ` matching “${q}”` : "";
    const where = ` in campaign ${state.campaign}`;
    if (!count) {
      if (show === "all" && !q) return `No videos${where} yet: generate one above.`;
      const further = state.nextCursor ? " so far: Load more looks further" : "";
      return `No ${many}${matching}${where}${further}.`;
    }
    const order = sort === "largest" ? ", largest first" : sort === "oldest" ? ", oldest first" : "";
    return `${count} ${count === 1 ? one : many}${matching}${where}${order}${state.nextCursor ? " (more below)" : ""}.`;
  }

  function renderListStatus() {
    const listed = describeList();
    ui.listStatus.classList.toggle("list-status-problem", Boolean(state.outOfTouch));
    ui.listStatus.textContent = state.outOfTouch
      ? `${listed} The cards may be out of date: ${state.outOfTouch}; still trying.`
      : listed;
  }

  // The listing's counts: how many videos the campaign keeps saved, on the "Saved" filter.
  function renderCounts() {
    const saved = state.counts ? Number(state.counts.saved_videos) || 0 : null;
    ui.savedCount.textContent = saved === null ? "" : String(saved);
    ui.savedCount.hidden = saved === null;
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
      (again && !again.disabled ? again : card.querySelector("h3")).focus();
    }
  }

  const cardSignature = (video) =>
    JSON.stringify([
      video,
      state.selected.has(video.video_id),
      state.requesting.has(video.video_id),
      state.deleting.has(video.video_id),
    ]);

  // Presigned URLs change with every answer; the picture only needs fetching again when the object does.
  const withoutQuery = (url) => String(url || "").split("?")[0];
  const playable = (video) => video.status === "completed" && Boolean(video.video_url);
  const thumbSignature = (video) =>
    JSON.stringify([
      video.status,
      Boolean(video.preview_expired),
      withoutQuery(video.thumbnail_url),
      withoutQuery(video.video_url),
      video.duration_s,
    ]);
  // The generation's status as the card shows it: a preview whose file is gone is "Expired", not "Completed".
  const shownStatus = (video) => (video.status === "completed" && video.preview_expired ? "expired" : video.status);

  function renderCard(video, keptThumb = null) {
    const titleId = `title-${video.video_id}`;
    const saveState = saveStateOf(video);
    const card = el(
      "li",
      {
        className: `card card-${shownStatus(video)}`,
        "data-video-id": video.video_id,
        "data-status": shownStatus(video),
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
          renderExpiry(video),
          renderSaveProgress(video, saveState),
          renderNotes(video),
          renderActions(video, saveState, titleId),
        ),
      ),
    );
    return card;
  }

  function renderThumb(video) {
    const picture = playable(video) ? renderPicture(video) : placeholder(shownStatus(video));
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
      expired: "Preview expired",
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
          { className: `badge badge-${shownStatus(video)}` },
          el("span", { "aria-hidden": "true" }, `${STATUS_ICON[shownStatus(video)] || "?"} `),
          el("span", { className: "status-text" }, STATUS_TEXT[shownStatus(video)] || video.status),
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
    // An expired preview's card says that instead (a save that failed on it failed because the file was gone).
    if (video.status !== "completed" || video.preview_expired) return null;
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

  // "Expires in 5 days" under the facts of a preview that can still be saved (a save under way will keep it).
  function renderExpiry(video) {
    const expiry = saveInProgress(video) ? null : expiryOf(video);
    if (!expiry) return null;
    const title = `The provider's copy is expected to go around ${FULL_DATE.format(expiry.at)} (an estimate): save the video to keep it.`;
    return el(
      "p",
      { className: `expiry${expiry.soon ? " expiry-soon" : ""}` },
      el("span", { className: "expiry-icon", "aria-hidden": "true" }, "◷ "),
      el("time", { datetime: video.preview_expires_at, title }, expiry.text),
    );
  }

  function renderNotes(video) {
    const notes = [];
    if (video.status === "failed") notes.push(el("p", { className: "note note-error" }, `Generation failed: ${video.error || "no reason given"}.`));
    if (video.status === "pending" || video.status === "processing") {
      notes.push(el("p", { className: "note" }, "This card updates itself when the video is ready."));
    }
    if (video.status === "completed" && video.preview_expired) {
      const found = dateOf(video.preview_expired_at);
      notes.push(
        el(
          "p",
          { className: "note note-error expired-note", title: found ? `The provider's file was found gone on ${FULL_DATE.format(found)}.` : null },
          "Preview expired — it can no longer be saved.",
        ),
      );
    }
    return notes;
  }

  // Save (or Retry), or the saved mark, on the first line; then Download (a saved video: R2 answers with the file's
  // name) or Open (a preview: the provider's file, on another origin, which a browser opens rather than downloads),
  // and Delete, on every card, at the end of the line.
  function renderActions(video, saveState, titleId) {
    const requesting = state.requesting.has(video.video_id);
    const deleting = state.deleting.has(video.video_id);
    const usable = video.status === "completed" && !video.preview_expired;
    let main = null;
    if (saveState === "saved") {
      main = el("p", { className: "saved-mark" }, "✓ Saved to Library");
    } else if (usable && (saveState === "none" || saveState === "failed")) {
      const retry = saveState === "failed";
      main = el(
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
      );
    }
    let file = null;
    if (usable && saveState === "saved" && video.download_url) {
      file = el(
        "a",
        {
          className: "button secondary",
          "data-action": "download",
          href: video.download_url,
          download: video.download_filename || `${video.video_id}.mp4`,
          "aria-describedby": titleId,
        },
        "Download",
      );
    } else if (usable && (video.video_raw_url || video.video_url)) {
      file = el(
        "a",
        {
          className: "button secondary",
          "data-action": "open",
          href: video.video_raw_url || video.video_url,
          target: "_blank",
          rel: "noopener",
          title: "Opens the provider's file in a new tab. Save it to the library to download it with its name.",
          "aria-describedby": titleId,
        },
        "Open",
      );
    }
    const remove = el(
      "button",
      {
        type: "button",
        className: "secondary danger-quiet delete",
        "data-action": "delete",
        "aria-describedby": titleId,
        disabled: deleting,
        "aria-busy": deleting ? "true" : null,
        onclick: () => deleteOne(video.video_id),
      },
      deleting ? "Deleting…" : "Delete",
    );
    return el("div", { className: "actions" }, main, el("div", { className: "actions-row" }, file, remove));
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
    ui.selectionCount.closest(".selection-bar").classList.toggle("selection-none", count === 0);
    ui.saveSelected.disabled = count === 0 || state.bulkBusy;
    ui.deleteSelected.disabled = count === 0 || state.bulkBusy;
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

  // -- deleting: one card, or the selected ones; the page asks first -----------------------------------------------

  // Asks in a dialog; resolves true when the user confirms. Cancel (the default button), Escape or Close: false.
  function confirmDialog(title, text, action) {
    ui.confirmTitle.textContent = title;
    ui.confirmText.textContent = text;
    ui.confirmButton.textContent = action;
    ui.confirm.returnValue = "";
    ui.confirm.showModal();
    return new Promise((resolve) => {
      ui.confirm.addEventListener("close", () => resolve(ui.confirm.returnValue === "confirm"), { once: true });
    });
  }

  // What a deletion removes, said before it happens.
  function deletionWarning(videos) {
    const saved = videos.filter((video) => saveStateOf(video) === "saved");
    const previews = videos.length - saved.length;
    const bytes = saved.reduce((total, video) => total + (Number(video.size_bytes) || 0), 0);
    const parts = [];
    if (videos.length === 1 && saved.length === 1) {
      parts.push(`Its saved copy (${formatBytes(bytes)}) is removed from the library's storage.`);
    } else if (videos.length === 1) {
      parts.push("It is removed from your library.");
    } else {
      if (saved.length) parts.push(`${plural(saved.length, "saved copy", "saved copies")} (${formatBytes(bytes)}) are removed from the library's storage.`);
      if (previews) parts.push(`${plural(previews, "video")} not saved ${previews === 1 ? "is" : "are"} removed from your library.`);
    }
    parts.push("This cannot be undone.");
    return parts.join(" ");
  }

  const deleteReason = (code, message) => DELETE_REASONS[code] || REASONS[code] || message || "no reason was given";

  // Cards whose videos are gone (deleted, being deleted, or found gone): out of the list, the selection and the
  // polling. Focus moves to the next card, so the keyboard does not lose its place.
  function removeFromView(ids) {
    const gone = new Set(ids.filter((id) => state.videos.has(id)));
    if (!gone.size) return;
    const focusWasIn = [...gone].some((id) => cardOf(id)?.contains(document.activeElement));
    const cards = [...ui.videos.children];
    const firstGone = cards.findIndex((card) => gone.has(card.dataset.videoId));
    const next = cards.slice(firstGone).find((card) => !gone.has(card.dataset.videoId)) ||
      cards.slice(0, firstGone).reverse().find((card) => !gone.has(card.dataset.videoId));
    for (const id of gone) {
      state.videos.delete(id);
      state.selected.delete(id);
      state.requesting.delete(id);
      for (const batch of state.batches) batch.pending.delete(id);
      cardOf(id)?.remove();
    }
    state.batches = state.batches.filter((batch) => batch.pending.size > 0);
    renderListStatus();
    renderSelection();
    if (focusWasIn || !ui.library.contains(document.activeElement)) {
      (next ? next.querySelector("h3") : ui.listStatus.closest("section").querySelector("h2")).focus();
    }
  }

  async function deleteOne(id) {
    const video = state.videos.get(id);
    if (!video || state.deleting.has(id)) return;
    const name = `“${shorten(video.prompt, 40)}”`;
    if (!(await confirmDialog("Delete this video?", `${shorten(video.prompt, 80)}: ${deletionWarning([video])}`, "Delete"))) return;
    const epoch = state.epoch;
    state.deleting.add(id);
    updateCard(video);
    try {
      const answer = await api("DELETE", videoPath(id));
      if (epoch !== state.epoch) return;
      removeFromView([id]);
      // 202: gone from every view already; R2 refused just now and the sweep removes the file.
      toast("success", answer && answer.outcome === "deleting" ? `Deleted ${name}: its stored file is removed in the background.` : `Deleted ${name}.`);
      loadUsage();
    } catch (error) {
      if (epoch !== state.epoch || error.status === 401) return;
      if (error.status === 404) {
        removeFromView([id]);
        toast("info", `${name} was no longer in your library.`);
        loadUsage();
        return;
      }
      toast("error", `Could not delete ${name}: ${deleteReason(error.code, error.message)}.`);
      // A save another tab started shows on the card.
      if (error.code === "save_in_progress") await refreshVideos([id]);
    } finally {
      if (epoch === state.epoch) {
        state.deleting.delete(id);
        const now = state.videos.get(id);
        if (now) updateCard(now);
      }
      schedulePoll();
    }
  }

  ui.deleteSelected.addEventListener("click", async () => {
    const ids = [...state.selected].filter((id) => state.videos.has(id));
    if (!ids.length) return;
    const videos = ids.map((id) => state.videos.get(id));
    const what = ids.length === 1 ? "this video" : `${ids.length} videos`;
    if (!(await confirmDialog(`Delete ${what}?`, deletionWarning(videos), ids.length === 1 ? "Delete" : `Delete ${ids.length}`))) return;
    const epoch = state.epoch;
    const label = "Delete selected";
    state.bulkBusy = true;
    for (const id of ids) state.deleting.add(id);
    for (const video of videos) updateCard(video);
    renderSelection();
    const results = [];
    let failure = null;
    try {
      for (let start = 0; start < ids.length; start += BULK_MAX) {
        const answer = await api("POST", "/api/video/delete", { video_ids: ids.slice(start, start + BULK_MAX) });
        if (epoch !== state.epoch) return;
        results.push(...(answer.results || []));
      }
    } catch (error) {
      failure = error;
    } finally {
      if (epoch === state.epoch) {
        state.bulkBusy = false;
        for (const id of ids) state.deleting.delete(id);
      }
    }
    if (epoch !== state.epoch) return;
    // 200 deleted, 202 being deleted (gone from view), 404 gone already: none of them is in the library any more.
    const gone = results.filter((r) => [200, 202, 404].includes(r.status)).map((r) => r.video_id);
    const refused = results.filter((r) => ![200, 202, 404].includes(r.status));
    for (const id of ids) state.selected.delete(id);
    removeFromView(gone);
    for (const id of ids) if (state.videos.has(id)) updateCard(state.videos.get(id));
    renderSelection();
    const parts = [];
    if (gone.length) parts.push(`${plural(gone.length, "video")} deleted`);
    if (refused.length) {
      const counts = new Map();
      for (const result of refused) {
        const words = deleteReason(result.error?.code, result.error?.message);
        counts.set(words, (counts.get(words) || 0) + 1);
      }
      const why = [...counts].map(([words, count]) => (count > 1 ? `${words} (${count})` : words)).join("; ");
      parts.push(`${refused.length} not deleted: ${why}`);
    }
    if (failure) {
      if (failure.status === 401) return;
      const done = parts.length ? ` (before that: ${parts.join(", ")})` : "";
      toast("error", `${label}: the request failed: ${failure.message}${done}.`, label);
    } else {
      toast(refused.length ? "error" : "success", `${label}: ${parts.join(", ")}.`, label);
    }
    if (gone.length) loadUsage();
    await refreshVideos(refused.filter((r) => r.error?.code === "save_in_progress").map((r) => r.video_id));
    schedulePoll();
  });

  // -- expiry: asking the provider about the previews shown whose expiry is near or past ---------------------------

  // A preview worth asking about: still savable, due within EXPIRING_SOON_MS (or past), or whose file failed to
  // play; and not asked about (by this page, or found there by anyone) within CHECK_COOLDOWN_MS.
  function wantsCheck(video, now) {
    if (video.status !== "completed" || video.preview_expired || saveStateOf(video) === "saved" || saveInProgress(video)) return false;
    const asked = Math.max(state.checkedAt.get(video.video_id) || 0, dateOf(video.preview_checked_at)?.getTime() || 0);
    if (now - asked < CHECK_COOLDOWN_MS) return false;
    if (state.suspects.has(video.video_id)) return true;
    const expires = dateOf(video.preview_expires_at);
    return Boolean(expires) && expires.getTime() - now <= EXPIRING_SOON_MS;
  }

  // One request at a time, at most CHECK_MAX previews each; what is found gone turns its card "expired".
  async function checkPreviews() {
    if (state.checking || !state.token) return;
    const epoch = state.epoch;
    const now = Date.now();
    const ids = [...state.videos.values()].filter((video) => wantsCheck(video, now)).slice(0, CHECK_MAX).map((video) => video.video_id);
    for (const id of state.suspects) if (!ids.includes(id)) state.suspects.delete(id); // asked lately: the answer stands
    if (!ids.length) return;
    state.checking = true;
    for (const id of ids) {
      state.checkedAt.set(id, now);
      state.suspects.delete(id);
    }
    let answer = null;
    try {
      answer = await api("POST", "/api/video/check-previews", { video_ids: ids });
    } catch {
      // No answer: the cards keep their estimate; they are asked about again after the cooldown.
      for (const id of ids) tellPlayer(id, false);
    } finally {
      state.checking = false;
    }
    if (epoch !== state.epoch) return;
    if (answer) await applyChecks(answer.results || []);
    // More previews due than one request takes, or a file that failed to play meanwhile: the next request.
    if (epoch === state.epoch && [...state.videos.values()].some((video) => wantsCheck(video, Date.now()))) checkPreviews();
  }

  async function applyChecks(results) {
    const expired = results.filter((r) => r.preview === "expired" && state.videos.has(r.video_id)).map((r) => r.video_id);
    const newlyExpired = expired.filter((id) => !state.videos.get(id).preview_expired);
    const firstPrompt = newlyExpired.length ? state.videos.get(newlyExpired[0]).prompt : null;
    for (const result of results) {
      const video = state.videos.get(result.video_id);
      if (result.preview === "available" && video) state.videos.set(result.video_id, { ...video, preview_checked_at: result.checked_at });
      if (result.preview === "available" || result.preview === "unknown") tellPlayer(result.video_id, false);
    }
    removeFromView(results.filter((r) => r.status === 404).map((r) => r.video_id));
    // The views of the gone ones carry what the record now says (no URLs to play, no Save).
    await refreshVideos(newlyExpired);
    for (const id of expired) tellPlayer(id, true);
    if (newlyExpired.length === 1) {
      toast("info", `The preview of “${shorten(firstPrompt, 40)}” has expired at the provider: it can no longer be saved.`);
    } else if (newlyExpired.length > 1) {
      toast("info", `${plural(newlyExpired.length, "preview")} expired at the provider: they can no longer be saved.`);
    }
  }

  // -- navigation: filter, sort, search --------------------------------------------------------------------------

  // Show the listing's parameters in the controls (a sort the filter cannot take falls back to newest).
  function setNav(nav) {
    const show = SHOW_VALUES.includes(nav.show) ? nav.show : "all";
    let sort = SORT_VALUES.includes(nav.sort) ? nav.sort : "newest";
    if (sort === "largest" && !LARGEST_SHOWS.includes(show)) sort = "newest";
    state.nav = { show, sort, q: String(nav.q || "").trim() };
    for (const radio of ui.filters) radio.checked = radio.value === show;
    const largest = ui.sort.querySelector('option[value="largest"]');
    largest.disabled = !LARGEST_SHOWS.includes(show);
    largest.textContent = largest.disabled ? "Largest (saved videos only)" : "Largest";
    ui.sort.value = sort;
    if (ui.search.value.trim() !== state.nav.q) ui.search.value = state.nav.q;
  }

  function navigate(change) {
    const before = JSON.stringify(state.nav);
    setNav({ ...state.nav, ...change });
    if (JSON.stringify(state.nav) !== before) loadList();
  }

  for (const radio of ui.filters) radio.addEventListener("change", () => radio.checked && navigate({ show: radio.value }));
  ui.sort.addEventListener("change", () => navigate({ sort: ui.sort.value }));

  // The search asks once the typing pauses, not at every key.
  let searchTimer = null;
  ui.search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => navigate({ q: ui.search.value }), SEARCH_DEBOUNCE_MS);
  });
  ui.search.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    clearTimeout(searchTimer);
    navigate({ q: ui.search.value });
  });

  // -- campaigns: the picker lists the caller's campaigns; a new one is typed in -----------------------------------

  async function loadCampaigns() {
    const token = state.token; // the campaigns are the user's, whichever campaign is shown meanwhile
    const found = [];
    try {
      let cursor = null;
      for (let page = 0; page < CAMPAIGN_PAGES; page += 1) {
        const answer = await api("GET", `/api/video/campaigns?${query({ limit: 100, cursor })}`);
        if (token !== state.token) return;
        found.push(...answer.items);
        cursor = answer.next_cursor;
        if (!cursor) break;
      }
    } catch (error) {
      if (token === state.token && error.status !== 401) {
        toast("error", `Could not list your campaigns: ${error.message}.`, "campaigns");
      }
      return;
    }
    state.campaigns = found;
    renderCampaigns();
  }

  // The usage counters were read again: the picker's count for that campaign follows.
  function noteCampaignCounts(campaignId, savedVideos) {
    const known = state.campaigns.find((c) => c.campaign_id === campaignId);
    if (!known || known.saved_videos === savedVideos) return;
    known.saved_videos = savedVideos;
    renderCampaigns();
  }

  // One option per campaign ("42 · 3 saved"), the current one even before its first video, then "New campaign…".
  function renderCampaigns() {
    const listed = state.campaigns.map((c) => c.campaign_id);
    const ids = listed.includes(state.campaign) ? listed : [...listed, state.campaign].sort();
    const options = ids.map((id) => {
      const known = state.campaigns.find((c) => c.campaign_id === id);
      const label = !known ? `${id} (no videos yet)` : known.saved_videos ? `${id} · ${known.saved_videos} saved` : id;
      return el("option", { value: id }, label);
    });
    options.push(el("option", { value: "" }, "New campaign…"));
    ui.campaign.replaceChildren(...options);
    ui.campaign.value = state.campaign;
  }

  function showCampaign(id) {
    ui.newCampaignForm.hidden = true;
    if (id === state.campaign) {
      ui.campaign.value = id;
      return;
    }
    state.campaign = id;
    sessionStorage.setItem(STORAGE.campaign, id);
    forgetVideos();
    clearToasts();
    renderCampaigns();
    loadList();
    loadUsage();
  }

  ui.campaign.addEventListener("change", () => {
    if (ui.campaign.value) {
      showCampaign(ui.campaign.value);
      return;
    }
    ui.newCampaignForm.hidden = false;
    ui.newCampaign.value = "";
    ui.newCampaign.focus();
  });

  ui.newCampaignForm.addEventListener("submit", (event) => {
    event.preventDefault();
    showCampaign(ui.newCampaign.value.trim());
    // A new campaign is for generating into: the form is next.
    ui.generatePanel.open = true;
    ui.generateForm.elements.prompt.focus();
  });

  ui.newCampaignCancel.addEventListener("click", () => {
    ui.newCampaignForm.hidden = true;
    ui.campaign.value = state.campaign;
    ui.campaign.focus();
  });

  // -- playing ----------------------------------------------------------------------------------------------------

  function play(id) {
    const video = state.videos.get(id);
    if (!video || !video.video_url) return;
    state.playing = id;
    ui.playerTitle.textContent = shorten(video.prompt, 80);
    ui.playerError.hidden = true;
    ui.playerVideo.hidden = false;
    ui.playerVideo.src = video.video_url;
    ui.player.showModal();
    ui.playerVideo.play().catch(() => {}); // autoplay may be refused; the controls are there
  }

  // A file that cannot be played (gone at the provider, not a video) says so instead of showing a black box; a
  // preview's file that does not load may be gone: the provider is asked (check-previews), and the card follows.
  ui.playerVideo.addEventListener("error", () => {
    if (!ui.playerVideo.getAttribute("src")) return;
    ui.playerVideo.hidden = true;
    const video = state.videos.get(state.playing);
    if (video) state.suspects.add(video.video_id);
    const asking = Boolean(video) && wantsCheck(video, Date.now());
    if (video && !asking) state.suspects.delete(video.video_id);
    ui.playerError.textContent = asking
      ? "This video cannot be played: its file could not be loaded. Asking the provider whether it still has it…"
      : "This video cannot be played: its file could not be loaded.";
    ui.playerError.hidden = false;
    if (asking) checkPreviews();
  });

  // What the provider said about the preview in the player, once the check has answered.
  function tellPlayer(id, expired) {
    if (!ui.player.open || state.playing !== id || ui.playerError.hidden) return;
    ui.playerError.textContent = expired
      ? "This preview has expired: the provider no longer has its file, so it can no longer be played or saved."
      : "This video cannot be played: its file could not be loaded, although the provider still lists it. Try again later.";
  }

  ui.player.addEventListener("close", () => {
    state.playing = null;
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
      // Its first video makes a campaign typed in as new one of the caller's.
      if (!state.campaigns.some((c) => c.campaign_id === video.campaign_id)) loadCampaigns();
      const { show, sort, q } = state.nav;
      if (["all", "unsaved"].includes(show) && sort === "newest" && !q) {
        state.videos = new Map([[video.video_id, video], ...state.videos]);
        renderList();
      } else {
        // The new video would not be in this view: back to all videos, newest first, where it is the first card.
        setNav({ show: "all", sort: "newest", q: "" });
        loadList({ first: video });
      }
      if (form.prompt.value === prompt) form.prompt.value = ""; // unless the user is already typing the next one
      toast("info", "Video requested: its card below updates itself when it is ready.");
    } catch (error) {
      if (error.status !== 401) toast("error", `Could not generate the video: ${error.message}.`);
    } finally {
      ui.generateButton.disabled = false;
      ui.generateButton.textContent = "Generate";
    }
  });

  ui.refresh.addEventListener("click", () => {
    loadList();
    loadUsage();
    loadCampaigns();
  });
  ui.loadMore.addEventListener("click", () => loadList({ more: true }));

  // -- start --------------------------------------------------------------------------------------------------

  // On a phone the videos come first: the generate form starts folded.
  if (window.matchMedia("(max-width: 640px)").matches) ui.generatePanel.open = false;
  ui.localSignIn.hidden = !LOCAL_SIGN_IN;
  if (state.token) showLibrary();
  else signOut();
})();
