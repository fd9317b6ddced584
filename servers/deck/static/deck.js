// The flight deck: one event stream per viewer (fetch + server-sent events, so a bearer
// token can ride along), redrawn on each snapshot. Plain JavaScript, nothing from outside.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = "tello-mcp-deck-token";
  let last = null, receivedAt = 0;

  const headers = (extra) => {
    const h = Object.assign({}, extra || {});
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) h.Authorization = "Bearer " + token;
    return h;
  };

  $("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    $("token").value = "";
    recordingsKey = null;  // the list again, with the token
    connect();
  });

  // ---- the stream ----
  let abort = null;
  async function connect() {
    if (abort) abort.abort();
    abort = new AbortController();
    const signal = abort.signal;
    try {
      const res = await fetch("/deck/events", { headers: headers(), signal, cache: "no-store" });
      if (!res.ok) { showLink("disconnected", "deck " + res.status); return retry(); }
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          const event = buf.slice(0, cut); buf = buf.slice(cut + 2);
          const data = event.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
          if (data && !event.startsWith("event:")) render(JSON.parse(data));
        }
      }
    } catch (e) {
      if (signal.aborted) return;
    }
    retry();
  }
  function retry() { setTimeout(connect, 1000); }

  // ---- rendering ----
  function showLink(status, age) {
    $("link").className = "link " + status;
    $("link-status").textContent = status;
    $("link-age").textContent = age;
  }
  const fmt = (v, d = 0) => (v === null || v === undefined ? "–" : Number(v).toFixed(d));
  const clock = (unix) => new Date(unix * 1000).toISOString().slice(11, 19);

  function render(s) {
    last = s; receivedAt = performance.now();
    // For benchmarks/deck.py: when the page first painted, and each packet's way to the page.
    const stats = (window.__deckStats ||= { firstRenderMs: performance.now(), packetToPageMs: [] });
    if (s.link.state_age_s !== null && stats.packetToPageMs.length < 5000)
      stats.packetToPageMs.push(Date.now() - (s.t - s.link.state_age_s) * 1000);
    const link = s.link, st = s.state, t = st.telemetry;
    showLink(link.status, link.state_age_s === null ? "never" : fmt(link.state_age_s, 1) + " s old");
    $("link-drone").textContent = link.drone + (link.sim ? " (simulator)" : "");
    const live = link.status === "connected";
    $("banner").hidden = live;
    $("banner").textContent = "The link is " + link.status + ": readings are " +
      (link.state_age_s === null ? "missing" : fmt(link.state_age_s, 1) + " s old") + ".";
    $("telemetry").classList.toggle("old", !live);
    $("t-flight").textContent = st.flight;
    if (t) {
      $("t-battery").textContent = t.battery_pct;
      const tr = s.battery_trend;
      if (tr.length > 1) {
        const [t0, b0] = tr[0], [t1, b1] = tr[tr.length - 1];
        const mins = (t1 - t0) / 60;
        $("t-battery-trend").textContent = mins >= 0.5 ? "(" + fmt((b1 - b0) / mins, 1) + " %/min)" : "";
      }
      $("t-height").textContent = t.height_cm;
      $("t-tof").textContent = t.tof_cm;
      const a = t.attitude;
      $("t-attitude").textContent = `pitch ${a.pitch_deg}° roll ${a.roll_deg}° yaw ${a.yaw_deg}°`;
      const v = t.velocity;
      $("t-speed").textContent = `x ${v.x_cm_s} y ${v.y_cm_s} z ${v.z_cm_s} cm/s`;
      $("t-temp").textContent = `${t.temperature_low_c}–${t.temperature_high_c} °C`;
      $("t-baro").textContent = fmt(t.barometer_m, 2);
    }
    const hold = s.hold;
    $("hold-banner").hidden = !hold;
    if (hold) $("hold-banner").textContent = `ON HOLD: set by ${hold.by} at ${hold.since}. Agents' flight actions are refused; land, stop and emergency still work.`;
    $("btn-hold").disabled = !!hold; $("btn-release").disabled = !hold;
    renderLog(s.log); renderAgents(s.agents); renderEnvelope(s.envelope); watchRecordings(s);
    drawMap(s); drawHeights(s);
    const cam = s.camera;
    if (cam.seq && $("frame").dataset.seq !== String(cam.seq)) loadFrame(cam.seq);
    $("frame-age").textContent = cam.age_s === null ? "no frame yet" : "captured " + fmt(cam.age_s, 1) + " s ago";
  }

  function cell(tr, text) { const td = document.createElement("td"); td.textContent = text; tr.appendChild(td); }
  function renderLog(rows) {
    const body = $("log-rows"); body.textContent = "";
    for (const e of rows.slice().reverse()) {
      const tr = document.createElement("tr");
      cell(tr, clock(e.at)); cell(tr, e.tool || ""); cell(tr, e.command); cell(tr, e.client || "(link)"); cell(tr, e.path || "");
      cell(tr, e.outcome); cell(tr, e.reply === null ? "" : e.reply); cell(tr, fmt(e.latency_ms, 1) + " ms");
      body.appendChild(tr);
    }
  }
  function renderAgents(agents) {
    const body = $("agents-rows"); body.textContent = "";
    for (const a of agents) {
      const tr = document.createElement("tr");
      cell(tr, a.client); cell(tr, a.path || ""); cell(tr, a.calls); cell(tr, a.last_call); cell(tr, clock(a.last_at));
      body.appendChild(tr);
    }
  }
  function renderEnvelope(env) {
    const dl = $("envelope-list"); dl.textContent = "";
    const rows = [["max height", env.max_height_cm + " cm"], ["max distance from takeoff", env.max_distance_cm + " cm"],
      ["takeoff needs battery ≥", env.min_takeoff_battery + " %"], ["auto-land at battery", env.critical_battery + " %"],
      ["flips need battery ≥", env.min_flip_battery + " %"]];
    for (const [k, v] of rows) {
      const dt = document.createElement("dt"); dt.textContent = k; dl.appendChild(dt);
      const dd = document.createElement("dd"); dd.textContent = v; dl.appendChild(dd);
    }
  }

  function drawMap(s) {
    const c = $("map"), g = c.getContext("2d"), W = c.width, H = c.height, R = s.envelope.max_distance_cm;
    const scale = (Math.min(W, H) / 2 - 24) / R;
    // World: x forward of the takeoff point (up on the map), y to its left (left on the map).
    const px = (y) => W / 2 - y * scale, py = (x) => H / 2 - x * scale;
    g.clearRect(0, 0, W, H);
    g.strokeStyle = "#b3261e"; g.setLineDash([6, 4]);
    g.beginPath(); g.arc(W / 2, H / 2, R * scale, 0, 2 * Math.PI); g.stroke(); g.setLineDash([]);
    g.fillStyle = "#555"; g.font = "11px sans-serif";
    g.fillText(`geofence ${R} cm`, 6, 14); g.fillText("x forward (cm) ↑", W / 2 + 4, 14); g.fillText("← y left (cm)", 6, H / 2 - 4);
    g.strokeStyle = "#ccc"; g.beginPath(); g.moveTo(W / 2, 20); g.lineTo(W / 2, H - 6); g.moveTo(6, H / 2); g.lineTo(W - 6, H / 2); g.stroke();
    g.fillText(`${R}`, W / 2 + 3, H / 2 - R * scale + 12); g.fillText(`${R}`, W / 2 - R * scale + 2, H / 2 + 12);
    g.fillStyle = "#1e7d32"; g.fillRect(W / 2 - 4, H / 2 - 4, 8, 8); g.fillText("takeoff", W / 2 + 6, H / 2 + 12);
    const path = s.path;
    g.strokeStyle = "#1565c0"; g.lineWidth = 2; g.beginPath();
    path.forEach(([x, y], i) => (i ? g.lineTo(px(y), py(x)) : g.moveTo(px(y), py(x)))); g.stroke(); g.lineWidth = 1;
    const pos = s.state.position_estimate;
    if (pos) {
      g.fillStyle = "#1565c055"; g.beginPath(); g.arc(px(pos.y_cm), py(pos.x_cm), Math.max(3, pos.uncertainty_cm * scale), 0, 2 * Math.PI); g.fill();
      g.fillStyle = "#1565c0"; g.beginPath(); g.arc(px(pos.y_cm), py(pos.x_cm), 4, 0, 2 * Math.PI); g.fill();
      const el = $("path-last");
      el.dataset.x = pos.x_cm; el.dataset.y = pos.y_cm; el.dataset.u = pos.uncertainty_cm;
      el.textContent = `estimate: x ${fmt(pos.x_cm)} cm, y ${fmt(pos.y_cm)} cm, z ${fmt(pos.z_cm)} cm, heading ${fmt(pos.heading_deg)}°, ± ${fmt(pos.uncertainty_cm)} cm`;
    } else {
      $("path-last").textContent = "on the ground (no estimate)";
    }
  }

  function drawHeights(s) {
    const c = $("heights"), g = c.getContext("2d"), W = c.width, H = c.height, cap = s.envelope.max_height_cm;
    g.clearRect(0, 0, W, H);
    const top = cap * 1.1, y = (h) => H - 16 - (h / top) * (H - 26), L = 34;
    g.fillStyle = "#555"; g.font = "11px sans-serif"; g.fillText("height (cm)", 2, 10); g.fillText("time (s) →", W - 60, H - 2);
    g.strokeStyle = "#b3261e"; g.setLineDash([6, 4]); g.beginPath(); g.moveTo(L, y(cap)); g.lineTo(W, y(cap)); g.stroke(); g.setLineDash([]);
    g.fillText(`cap ${cap}`, L + 2, y(cap) - 2); g.fillText("0", 20, y(0));
    const pts = s.heights; if (!pts.length) return;
    const t1 = s.t, span = Math.max(60, t1 - pts[0][0]), x = (t) => L + (1 - (t1 - t) / span) * (W - L - 4);
    g.fillText(`-${Math.round(span)}`, L, H - 2);
    g.strokeStyle = "#1565c0"; g.beginPath();
    pts.forEach(([t, h], i) => (i ? g.lineTo(x(t), y(h)) : g.moveTo(x(t), y(h)))); g.stroke();
  }

  async function loadFrame(seq) {
    const res = await fetch("/deck/frame.jpg?seq=" + seq, { headers: headers() });
    if (!res.ok) return;
    const img = $("frame"); img.src = URL.createObjectURL(await res.blob()); img.hidden = false; img.dataset.seq = String(seq);
  }

  // ---- controls ----
  async function control(name, body) {
    $("control-result").textContent = name + "…";
    try {
      const res = await fetch("/admin/deck/" + name, {
        method: "POST", headers: headers({ "Content-Type": "application/json" }), body: JSON.stringify(body || {}),
      });
      const out = await res.json();
      $("control-result").textContent = res.ok ? `${name}: ok` : `${name}: ${out.error || res.status}`;
    } catch (e) { $("control-result").textContent = `${name}: ${e}`; }
  }
  document.querySelectorAll("button[data-control]").forEach((b) => b.addEventListener("click", () => control(b.dataset.control)));
  $("btn-emergency").addEventListener("click", () => { $("confirm-emergency").hidden = false; });
  $("btn-emergency-cancel").addEventListener("click", () => { $("confirm-emergency").hidden = true; });
  $("btn-emergency-confirm").addEventListener("click", () => { $("confirm-emergency").hidden = true; control("emergency", { confirm: true }); });

  // Ages keep counting between snapshots (a silent drone sends none).
  setInterval(() => {
    if (!last || last.link.state_age_s === null) return;
    const age = last.link.state_age_s + (performance.now() - receivedAt) / 1000;
    $("link-age").textContent = age.toFixed(1) + " s old";
  }, 500);

  // ---- the flight recorder's files ----
  // Reloaded when the page starts, when a token is entered, and when a recording opens or
  // closes (the snapshot names the one being written). Downloads go through fetch, so the
  // bearer token rides along, then are saved from a blob.
  let recordingsKey = null;
  function watchRecordings(s) {
    const key = s.recordings_url + "|" + (s.recording || "");
    if (key !== recordingsKey) { recordingsKey = key; loadRecordings(s.recordings_url); }
  }
  const size = (n) => (n >= 1e6 ? fmt(n / 1e6, 1) + " MB" : fmt(n / 1e3, 0) + " kB");
  async function loadRecordings(url) {
    const status = $("recordings-status");
    let res, out;
    try {
      res = await fetch(url, { headers: headers(), cache: "no-store" });
      out = await res.json();
    } catch (e) { status.textContent = "recordings: " + e; return; }
    if (!res.ok) { status.textContent = "recordings: " + (out.error_description || out.error || res.status); return; }
    const body = $("recordings-rows"); body.textContent = "";
    if (!out.recording_on) { status.textContent = out.note; return; }
    status.textContent = out.flights.length ? out.flights.length + " recorded" : "no flights recorded yet";
    for (const f of out.flights.slice().reverse()) {
      const tr = document.createElement("tr");
      tr.dataset.name = f.name;
      cell(tr, f.start.replace("T", " ").replace("Z", "")); cell(tr, f.open ? "recording…" : fmt(f.duration_s, 1) + " s");
      cell(tr, size(f.size));
      const td = document.createElement("td"), a = document.createElement("a");
      a.href = f.url; a.download = f.name; a.textContent = "download"; a.className = "download";
      a.addEventListener("click", (ev) => { ev.preventDefault(); download(f, status); });
      td.appendChild(a); tr.appendChild(td); body.appendChild(tr);
    }
  }
  async function download(f, status) {
    try {
      const res = await fetch(f.url, { headers: headers(), cache: "no-store" });
      if (!res.ok) { const out = await res.json(); status.textContent = f.name + ": " + (out.error || res.status); return; }
      const a = document.createElement("a");
      a.href = URL.createObjectURL(await res.blob()); a.download = f.name;
      document.body.appendChild(a); a.click(); a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 60000);
    } catch (e) { status.textContent = f.name + ": " + e; }
  }

  connect();
})();
