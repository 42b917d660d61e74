/*
 * Postillon's browser snippet: page views, events and identification, Segment-shaped.
 *
 *   <script async src="https://postillon.example.com/t.js" data-write-key="pst_write_..."></script>
 *
 * It sends one page view on load (`data-auto-page="false"` turns that off, e.g. for a page
 * that calls page() itself) and, when the page goes away, how long it was visible.
 * Pages may call it before it has loaded through a queue, replayed after that page view:
 *   window.postillon = window.postillon || [];
 *   postillon.push(["track", "Signed up", {plan: "pro"}]);
 * Once loaded, `postillon` is {page, track, identify, reset, anonymousId}.
 *
 * The visitor's anonymous id lives in the first-party cookie `pst_aid`, mirrored in
 * localStorage; a user id given to identify() in localStorage `pst_uid`.
 * Messages go out as text/plain JSON (a CORS "simple" request, so no preflight); the write
 * key travels in the body. Nothing here may ever break the page that includes it, so every
 * public method swallows its own errors.
 */
(function () {
  "use strict";

  var existing = window.postillon;
  if (existing && !Array.isArray(existing) && existing.__postillon) {
    return; // included twice: the first copy is in charge
  }

  var script = document.currentScript || document.querySelector("script[data-write-key]");
  if (!script || !script.src) {
    return;
  }
  var BASE = baseOf(script.src);
  var WRITE_KEY = script.getAttribute("data-write-key") || "";
  var AUTO_PAGE = script.getAttribute("data-auto-page") !== "false";
  var LIBRARY = { name: "postillon.js", version: "1" };
  var PATHS = { page: "/v1/p", track: "/v1/t", identify: "/v1/i" };
  var ANONYMOUS_KEY = "pst_aid";
  var USER_KEY = "pst_uid";
  var ONE_YEAR_SECONDS = 365 * 24 * 60 * 60;

  var anonymousId = loadAnonymousId();
  var userId = storageGet(USER_KEY);
  var currentView = null; // the page view whose visible time is being measured

  function baseOf(src) {
    var url = new URL(src, document.baseURI);
    return url.origin + url.pathname.replace(/\/[^/]*$/, "");
  }

  // --- ids and storage -----------------------------------------------------------------

  function uuid4() {
    var c = window.crypto;
    if (c && typeof c.randomUUID === "function") {
      return c.randomUUID();
    }
    var bytes = new Uint8Array(16);
    if (c && typeof c.getRandomValues === "function") {
      c.getRandomValues(bytes);
    } else {
      for (var i = 0; i < 16; i++) {
        bytes[i] = Math.floor(Math.random() * 256);
      }
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    var hex = Array.prototype.map
      .call(bytes, function (b) {
        return (b + 0x100).toString(16).slice(1);
      })
      .join("");
    return [
      hex.slice(0, 8),
      hex.slice(8, 12),
      hex.slice(12, 16),
      hex.slice(16, 20),
      hex.slice(20),
    ].join("-");
  }

  function cookieGet(name) {
    try {
      var pairs = document.cookie ? document.cookie.split("; ") : [];
      for (var i = 0; i < pairs.length; i++) {
        var at = pairs[i].indexOf("=");
        if (pairs[i].slice(0, at) === name) {
          return decodeURIComponent(pairs[i].slice(at + 1)) || null;
        }
      }
    } catch (e) {
      // sandboxed frames throw on document.cookie
    }
    return null;
  }

  function cookieSet(name, value, maxAgeSeconds) {
    try {
      var cookie =
        name + "=" + encodeURIComponent(value) + "; path=/; max-age=" + maxAgeSeconds +
        "; SameSite=Lax";
      if (location.protocol === "https:") {
        cookie += "; Secure";
      }
      document.cookie = cookie;
    } catch (e) {
      // cookies unavailable: localStorage carries the id
    }
  }

  function storageGet(key) {
    try {
      return window.localStorage.getItem(key);
    } catch (e) {
      return null;
    }
  }

  function storageSet(key, value) {
    try {
      if (value === null) {
        window.localStorage.removeItem(key);
      } else {
        window.localStorage.setItem(key, value);
      }
    } catch (e) {
      // private modes and disabled storage throw; the value then lives for this page only
    }
  }

  function loadAnonymousId() {
    var id = cookieGet(ANONYMOUS_KEY) || storageGet(ANONYMOUS_KEY) || uuid4();
    rememberAnonymousId(id);
    return id;
  }

  function rememberAnonymousId(id) {
    // Written on every load, so the cookie's year counts from the last visit.
    cookieSet(ANONYMOUS_KEY, id, ONE_YEAR_SECONDS);
    storageSet(ANONYMOUS_KEY, id);
  }

  // --- messages ------------------------------------------------------------------------

  function pageFacts() {
    return {
      url: location.href.replace(/#.*$/, ""),
      path: location.pathname,
      title: document.title,
      referrer: document.referrer,
      search: location.search,
    };
  }

  function campaignFacts() {
    var names = { source: "utm_source", medium: "utm_medium", name: "utm_campaign",
      term: "utm_term", content: "utm_content" };
    var query = new URLSearchParams(location.search);
    var campaign = null;
    Object.keys(names).forEach(function (field) {
      var value = query.get(names[field]);
      if (value) {
        campaign = campaign || {};
        campaign[field] = value;
      }
    });
    return campaign;
  }

  function timeZone() {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || undefined;
    } catch (e) {
      return undefined;
    }
  }

  function message(type, fields) {
    var context = {
      page: pageFacts(),
      userAgent: navigator.userAgent,
      locale: navigator.language,
      timezone: timeZone(),
      library: LIBRARY,
    };
    var campaign = campaignFacts();
    if (campaign) {
      context.campaign = campaign;
    }
    var built = {
      type: type,
      writeKey: WRITE_KEY,
      messageId: uuid4(),
      anonymousId: anonymousId,
      originalTimestamp: new Date().toISOString(),
      context: context,
    };
    if (userId) {
      built.userId = userId;
    }
    return Object.assign(built, fields);
  }

  function serialise(built) {
    // sentAt is set at the last moment: the server corrects this browser's clock skew from
    // the distance between sentAt and the moment it received the message.
    built.sentAt = new Date().toISOString();
    return JSON.stringify(built);
  }

  function send(built) {
    if (!WRITE_KEY) {
      warn("no data-write-key on the script tag; nothing is sent");
      return;
    }
    var url = BASE + PATHS[built.type];
    var body = serialise(built);
    try {
      fetch(url, {
        method: "POST",
        body: body,
        keepalive: true, // outlives the page when the visitor navigates away
        credentials: "omit",
        headers: { "Content-Type": "text/plain" },
      }).catch(function () {
        // offline or refused: analytics must not raise in the page
      });
    } catch (e) {
      beacon(url, body);
    }
  }

  function beacon(url, body) {
    try {
      if (navigator.sendBeacon) {
        navigator.sendBeacon(url, new Blob([body], { type: "text/plain" }));
      }
    } catch (e) {
      // nothing left to try
    }
  }

  function warn(text) {
    if (window.console && console.warn) {
      console.warn("postillon: " + text);
    }
  }

  function isObject(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
  }

  // --- dwell time ----------------------------------------------------------------------

  function startView(pageMessageId) {
    finishView(); // a single-page app's next page() ends the previous view
    currentView = {
      messageId: pageMessageId,
      visibleMs: 0,
      visibleSince: document.visibilityState === "hidden" ? null : Date.now(),
    };
  }

  function onVisibilityChange() {
    if (!currentView) {
      return;
    }
    if (document.visibilityState === "hidden") {
      pauseView(currentView);
    } else if (currentView.visibleSince === null) {
      currentView.visibleSince = Date.now();
    }
  }

  function pauseView(view) {
    if (view.visibleSince !== null) {
      view.visibleMs += Math.max(0, Date.now() - view.visibleSince);
      view.visibleSince = null;
    }
  }

  function finishView() {
    var view = currentView;
    currentView = null; // once per page view, however many pagehide events follow
    if (!view || !WRITE_KEY) {
      return;
    }
    pauseView(view);
    var built = message("track", {
      event: "page_dwell",
      properties: { page_message_id: view.messageId, dwell_ms: Math.round(view.visibleMs) },
    });
    // sendBeacon is the one request a page that is going away can still rely on.
    beacon(BASE + PATHS.track, serialise(built));
  }

  function onPageShow(event) {
    // Back from the back/forward cache: the visitor is looking at this page again.
    if (event.persisted && AUTO_PAGE) {
      api.page();
    }
  }

  // --- the public API ------------------------------------------------------------------

  function page(name, properties) {
    if (isObject(name)) {
      properties = name;
      name = undefined;
    }
    var fields = { properties: Object.assign(pageFacts(), isObject(properties) ? properties : {}) };
    if (typeof name === "string" && name) {
      fields.name = name;
    }
    var built = message("page", fields);
    send(built);
    startView(built.messageId);
  }

  function track(event, properties) {
    if (typeof event !== "string" || !event) {
      warn("track() needs an event name");
      return;
    }
    send(message("track", { event: event, properties: isObject(properties) ? properties : {} }));
  }

  function identify(idOrEmail, traits) {
    if (isObject(idOrEmail)) {
      traits = idOrEmail;
      idOrEmail = undefined;
    }
    var given = Object.assign({}, isObject(traits) ? traits : {});
    if (typeof idOrEmail === "number") {
      idOrEmail = String(idOrEmail);
    }
    if (typeof idOrEmail === "string" && idOrEmail) {
      if (idOrEmail.indexOf("@") !== -1) {
        given.email = idOrEmail;
      } else {
        userId = idOrEmail;
        storageSet(USER_KEY, userId);
      }
    }
    if (!userId && !given.email) {
      warn("identify() needs a user id or an email address");
      return;
    }
    send(message("identify", { traits: given }));
  }

  function reset() {
    userId = null;
    storageSet(USER_KEY, null);
    anonymousId = uuid4();
    rememberAnonymousId(anonymousId);
  }

  var methods = { page: page, track: track, identify: identify, reset: reset };

  function call(entry) {
    if (!Array.isArray(entry) || !Object.prototype.hasOwnProperty.call(methods, entry[0])) {
      warn("ignored a queued call that is not [method, ...arguments]");
      return;
    }
    methods[entry[0]].apply(null, entry.slice(1));
  }

  function guarded(fn) {
    return function () {
      try {
        return fn.apply(null, arguments);
      } catch (e) {
        warn(String(e));
        return undefined;
      }
    };
  }

  var api = {
    __postillon: true,
    page: guarded(page),
    track: guarded(track),
    identify: guarded(identify),
    reset: guarded(reset),
    anonymousId: function () {
      return anonymousId;
    },
    // Code that still thinks it holds the queue keeps working after the load.
    push: guarded(call),
  };

  document.addEventListener("visibilitychange", onVisibilityChange);
  window.addEventListener("pagehide", guarded(finishView));
  window.addEventListener("pageshow", guarded(onPageShow));

  // The page view comes first: what the page queued happened while it was being viewed.
  if (AUTO_PAGE) {
    if (document.prerendering) {
      // A page the browser renders ahead is not viewed until the visitor goes there.
      document.addEventListener("prerenderingchange", function () {
        api.page();
      }, { once: true });
    } else {
      api.page();
    }
  }
  var queued = Array.isArray(existing) ? existing.slice() : [];
  queued.forEach(guarded(call));
  window.postillon = api;
})();
