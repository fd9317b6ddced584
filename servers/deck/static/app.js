// The flight deck as an MCP App. It runs in the host's sandboxed iframe and reaches nothing but
// the host: JSON-RPC over postMessage (ui/initialize, the get_state result the host hands over,
// then tools/call through the host). No URI anywhere in here, only tool names, prefixed the way
// the host named get_state (a gateway that multiplexes servers may rename the tools).
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const PROTOCOL = "2026-01-26";
  const POLL_MS = 200; // ~5 snapshots a second while shown: the protocol has no push to a view
  const RETRY_MS = 2000;
  const host = window.parent;
  const pending = new Map();
  let nextId = 1, prefix = "", torn = false, lastGood = 0;

  // ---- the host connection ----
  const send = (message) => host.postMessage(message, "*");
  function request(method, params) {
    const id = nextId++;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      send({ jsonrpc: "2.0", id, method, params });
    });
  }
  const notify = (method, params) => send({ jsonrpc: "2.0", method, params });
  const answer = (id, result) => send({ jsonrpc: "2.0", id, result });

  window.addEventListener("message", (event) => {
    if (event.source !== host) return;
    const m = event.data;
    if (!m || m.jsonrpc !== "2.0") return;
    if (!m.method) {
      const p = pending.get(m.id);
      if (!p) return;
      pending.delete(m.id);
      if (m.error) p.reject(new Error(m.error.message || "host error " + m.error.code));
      else p.resolve(m.result);
      return;
    }
    switch (m.method) {
      case "ui/notifications/tool-result": onToolResult(m.params); break;
      case "ui/notifications/host-context-changed": applyContext(m.params); break;
      case "ui/resource-teardown": torn = true; answer(m.id, {}); break;
      case "ping": answer(m.id, {}); break;
      default:
        if (m.id !== undefined) send({ jsonrpc: "2.0", id: m.id, error: { code: -32601, message: "Method not found" } });
    }
  });

  async function call(tool, args) {
    return request("tools/call", { name: prefix + tool, arguments: args || {} });
  }
  const textOf = (result) => ((result && result.content) || []).filter((c) => c.type === "text").map((c) => c.text).join(" ");

  function applyContext(ctx) {
    if (!ctx) return;
    const name = ctx.toolInfo && ctx.toolInfo.tool && ctx.toolInfo.tool.name;
    if (typeof name === "string" && name.endsWith("get_state")) prefix = name.slice(0, -"get_state".length);
    const vars = ctx.styles && ctx.styles.variables;
    if (vars) for (const [k, v] of Object.entries(vars)) if (k.startsWith("--") && v) document.documentElement.style.setProperty(k, v);
  }

  // ---- rendering ----
  const fmt = (v, d = 0) => (v === null || v === undefined ? "–" : Number(v).toFixed(d));
  const clock = (unix) => new Date(unix * 1000).toISOString().slice(11, 19);
  const problem = (text) => { $("problem").hidden = !text; $("problem").textContent = text || ""; };

  function renderState(state, link) {
    $("link").className = "link " + link.status;
    $("link-status").textContent = link.status;
    $("link-age").textContent = link.state_age_s === null ? "never" : fmt(link.state_age_s, 1) + " s old";
    $("link-drone").textContent = "drone " + (state.drone || link.drone || "–") + (link.sim ? " (simulator)" : "");
    const live = link.status === "connected";
    $("banner").hidden = live;
    $("banner").textContent = "The link is " + link.status + ": readings are " +
      (link.state_age_s === null ? "missing" : fmt(link.state_age_s, 1) + " s old") + ".";
    $("telemetry").classList.toggle("old", !live);
    $("t-flight").textContent = state.flight;
    const t = state.telemetry;
    if (t) {
      $("t-battery").textContent = t.battery_pct;
      $("t-height").textContent = t.height_cm;
      $("t-tof").textContent = t.tof_cm;
      const a = t.attitude;
      $("t-attitude").textContent = `pitch ${a.pitch_deg}° roll ${a.roll_deg}° yaw ${a.yaw_deg}°`;
      $("t-temp").textContent = `${t.temperature_low_c}–${t.temperature_high_c} °C`;
    }
    const hold = state.hold;
    $("hold-banner").hidden = !hold;
    if (hold) $("hold-banner").textContent = `ON HOLD: set by ${hold.by} at ${hold.since}. Agents' flight actions are refused; Stop, Land and Emergency still work.`;
  }

  function renderSnapshot(s) {
    renderState(Object.assign({}, s.state, { hold: s.hold }), s.link);
    const env = s.envelope;
    $("envelope").textContent = `envelope: height ≤ ${env.max_height_cm} cm, ≤ ${env.max_distance_cm} cm from takeoff, takeoff at battery ≥ ${env.min_takeoff_battery} %`;
    const body = $("log-rows");
    body.textContent = "";
    for (const e of s.log.slice(-12).reverse()) {
      const tr = document.createElement("tr");
      for (const text of [clock(e.at), e.command, e.client || "(link)", e.outcome, fmt(e.latency_ms, 1) + " ms"]) {
        const td = document.createElement("td"); td.textContent = text; tr.appendChild(td);
      }
      body.appendChild(tr);
    }
    drawMap(s);
  }

  function drawMap(s) {
    const c = $("map"), g = c.getContext("2d"), W = c.width, H = c.height, R = s.envelope.max_distance_cm;
    const scale = (Math.min(W, H) / 2 - 14) / R;
    const px = (y) => W / 2 - y * scale, py = (x) => H / 2 - x * scale; // x forward = up, y left = left
    g.clearRect(0, 0, W, H);
    g.strokeStyle = "#b3261e"; g.setLineDash([5, 4]);
    g.beginPath(); g.arc(W / 2, H / 2, R * scale, 0, 2 * Math.PI); g.stroke(); g.setLineDash([]);
    g.fillStyle = "#888"; g.font = "10px sans-serif"; g.fillText(`geofence ${R} cm · x forward ↑`, 4, 11);
    g.fillStyle = "#1e7d32"; g.fillRect(W / 2 - 3, H / 2 - 3, 6, 6);
    g.strokeStyle = "#1565c0"; g.lineWidth = 2; g.beginPath();
    s.path.forEach(([x, y], i) => (i ? g.lineTo(px(y), py(x)) : g.moveTo(px(y), py(x)))); g.stroke(); g.lineWidth = 1;
    const pos = s.state.position_estimate;
    const last = $("path-last");
    if (pos) {
      g.fillStyle = "#1565c055"; g.beginPath(); g.arc(px(pos.y_cm), py(pos.x_cm), Math.max(3, pos.uncertainty_cm * scale), 0, 2 * Math.PI); g.fill();
      g.fillStyle = "#1565c0"; g.beginPath(); g.arc(px(pos.y_cm), py(pos.x_cm), 3, 0, 2 * Math.PI); g.fill();
      last.dataset.x = pos.x_cm; last.dataset.y = pos.y_cm; last.dataset.u = pos.uncertainty_cm;
      last.textContent = `x ${fmt(pos.x_cm)} cm, y ${fmt(pos.y_cm)} cm, z ${fmt(pos.z_cm)} cm, ± ${fmt(pos.uncertainty_cm)} cm`;
    } else {
      last.textContent = "on the ground (no estimate)";
    }
  }

  // The result of the call that opened the view (get_state), or of an action with its state.
  function onToolResult(result) {
    const sc = result && result.structuredContent;
    const state = sc && (sc.freshness ? sc : sc.state);
    if (state && state.freshness) renderState(state, { status: state.freshness.link, state_age_s: state.freshness.state_age_s });
  }

  // ---- the live view ----
  const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  async function live() {
    while (!torn) {
      const started = performance.now();
      let pause = POLL_MS;
      try {
        const result = await call("deck_snapshot");
        if (result.isError || !result.structuredContent) throw new Error(textOf(result) || "no snapshot");
        renderSnapshot(result.structuredContent);
        lastGood = performance.now();
        problem("");
      } catch (e) {
        problem("Live view paused: " + e.message);
        pause = RETRY_MS;
      }
      await wait(Math.max(0, pause - (performance.now() - started)));
    }
  }

  // ---- controls: the drone's own tools, through the host ----
  async function control(tool, args, label) {
    $("control-result").textContent = label + "…";
    try {
      const result = await call(tool, args);
      $("control-result").textContent = label + ": " + (result.isError ? textOf(result) : "ok");
      const image = (result.content || []).find((c) => c.type === "image");
      if (image) { $("frame").src = "data:" + image.mimeType + ";base64," + image.data; $("frame").hidden = false; }
      if (!result.isError) onToolResult(result);
    } catch (e) {
      $("control-result").textContent = label + ": " + e.message;
    }
  }
  document.querySelectorAll("button[data-tool]").forEach((b) => b.addEventListener("click", () => control(b.dataset.tool, {}, b.textContent)));
  $("btn-emergency").addEventListener("click", () => { $("confirm-emergency").hidden = false; });
  $("btn-emergency-cancel").addEventListener("click", () => { $("confirm-emergency").hidden = true; });
  $("btn-emergency-confirm").addEventListener("click", () => {
    $("confirm-emergency").hidden = true;
    control("emergency", { confirm: true }, "Emergency");
  });

  // Ages keep counting between snapshots when the host stops answering.
  setInterval(() => { if (lastGood && performance.now() - lastGood > 3000) problem("Live view paused: no snapshot for " + fmt((performance.now() - lastGood) / 1000) + " s"); }, 1000);

  (async () => {
    try {
      const init = await request("ui/initialize", {
        protocolVersion: PROTOCOL,
        appInfo: { name: "tello-mcp flight deck", version: "1" },
        appCapabilities: { availableDisplayModes: ["inline"] },
      });
      applyContext(init && init.hostContext);
      notify("ui/notifications/initialized", {});
      new ResizeObserver(() => {
        const box = document.body.getBoundingClientRect(); // the content, not the iframe's viewport
        notify("ui/notifications/size-changed", { width: Math.ceil(box.width), height: Math.ceil(box.height) });
      }).observe(document.body);
    } catch (e) {
      problem("The host did not initialize the app: " + e.message);
      return;
    }
    live();
  })();
})();
