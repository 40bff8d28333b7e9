// rfm-web's own script (served from the binary, no inline script):
// tooltips with exact figures on every chart mark ([data-tip]), and
// client-side sorting of small tables (table.sortable) by clicking or
// pressing Enter on a column header. Pages work without it.
"use strict";
(function () {
  var tip = document.getElementById("tip");
  function show(ev) {
    var el = ev.target.closest("[data-tip]");
    if (!el || !tip) { if (tip) tip.hidden = true; return; }
    tip.textContent = el.getAttribute("data-tip");
    tip.hidden = false;
    var x = ev.clientX + 14, y = ev.clientY + 14;
    var w = tip.offsetWidth, h = tip.offsetHeight;
    if (x + w > window.innerWidth) x = ev.clientX - w - 10;
    if (y + h > window.innerHeight) y = ev.clientY - h - 10;
    tip.style.left = x + "px";
    tip.style.top = y + "px";
  }
  document.addEventListener("mousemove", show);
  document.addEventListener("focusin", function (ev) {
    var el = ev.target.closest("[data-tip]") || ev.target.querySelector && ev.target.querySelector("[data-tip]");
    if (!el || !tip) return;
    var r = el.getBoundingClientRect();
    tip.textContent = el.getAttribute("data-tip");
    tip.hidden = false;
    tip.style.left = (r.left + 4) + "px";
    tip.style.top = (r.bottom + 4) + "px";
  });
  document.addEventListener("focusout", function () { if (tip) tip.hidden = true; });

  function key(cell) {
    var v = cell.getAttribute("data-v");
    if (v === null) v = cell.textContent.replace(/,/g, "").trim();
    var n = parseFloat(v);
    return isNaN(n) || !/^-?[0-9.]+%?$/.test(v) ? v.toLowerCase() : n;
  }
  function sortBy(table, col, th) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var asc = th.getAttribute("aria-sort") !== "ascending";
    rows.sort(function (a, b) {
      var x = key(a.cells[col]), y = key(b.cells[col]);
      var o = x < y ? -1 : x > y ? 1 : 0;
      return asc ? o : -o;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (c) { c.setAttribute("aria-sort", "none"); });
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    if (!table.tHead) return;
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      th.tabIndex = 0;
      th.classList.add("sorter");
      th.addEventListener("click", function () { sortBy(table, col, th); });
      th.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); sortBy(table, col, th); }
      });
    });
  });
})();

// Live page: the coordinator's snapshot every second (server-sent events),
// written into the tables as text.
(function () {
  var live = document.getElementById("live");
  if (!live || !window.EventSource) return;
  var err = document.getElementById("live-error");
  function row(cells) {
    var tr = document.createElement("tr");
    cells.forEach(function (c, i) {
      var td = document.createElement(i === 0 ? "th" : "td");
      if (i === 0) td.setAttribute("scope", "row");
      td.textContent = c[0];
      if (c[1]) td.className = "num";
      tr.appendChild(td);
    });
    return tr;
  }
  function fill(id, rows) {
    var body = document.querySelector("#" + id + " tbody");
    if (!body) return;
    while (body.firstChild) body.removeChild(body.firstChild);
    rows.forEach(function (r) { body.appendChild(row(r)); });
  }
  function n(x) { return Number(x || 0).toLocaleString("en-US"); }
  // As the server draws it (rfm_proto::size::held, Rust's "{:.1}": a
  // tie rounds to even, where toFixed rounds it up); "-" while running.
  function size(b) {
    b = Number(b || 0);
    if (!b) return "-";
    var units = [["GiB", 1073741824], ["MiB", 1048576], ["KiB", 1024]];
    for (var i = 0; i < units.length; i++) {
      if (b >= units[i][1]) {
        var tenths = b / units[i][1] * 10, whole = Math.floor(tenths);
        if (tenths - whole === 0.5) tenths = whole % 2 === 0 ? whole : whole + 1;
        return (Math.round(tenths) / 10).toFixed(1) + units[i][0];
      }
    }
    return b + "B";
  }
  var source = new EventSource(live.getAttribute("data-events"));
  source.onmessage = function (ev) {
    var v = JSON.parse(ev.data);
    if (v.error) { err.textContent = v.error; return; }
    err.textContent = "";
    fill("live-jobs", (v.jobs || []).map(function (j) {
      return [[j.job_id], [j.stage], [j.tasks_done + "/" + j.tasks_total + " (" + j.tasks_running + " running)", 1],
        [n(j.bytes_done) + "/" + n(j.bytes_total), 1], [n(j.lines_done), 1], [n(j.rows_per_second), 1],
        [String(j.retries), 1], [Number(j.seconds || 0).toFixed(1), 1], [size(j.result_bytes), 1], [j.error]];
    }));
    fill("live-workers", (v.workers || []).map(function (w) {
      return [[w.worker_id], [w.address], [w.state], [w.running_tasks + "/" + w.slots, 1],
        [Number(w.seconds_since_heartbeat || 0).toFixed(1) + " s", 1]];
    }));
    live.setAttribute("data-updated", String(Date.now()));
  };
})();
