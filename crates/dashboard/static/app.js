// iocwatch dashboard: live updates of alert tables. Plain JavaScript, no dependencies.
// A table with data-live-after polls /live/alerts for alerts newer than that sequence
// number, with the page's filters, and adds them at the top. Text goes in through
// textContent only, never as HTML.
"use strict";

(function () {
  var POLL_MS = 2000;

  function cell(row, content) {
    var td = document.createElement("td");
    if (content) {
      td.appendChild(content);
    }
    row.appendChild(td);
    return td;
  }

  function text(value) {
    return document.createTextNode(value === null || value === undefined ? "" : String(value));
  }

  function alertRow(alert) {
    var tr = document.createElement("tr");
    tr.className = "new";
    var link = document.createElement("a");
    link.href = alert.href;
    link.textContent = alert.time;
    cell(tr, link);
    var badge = document.createElement("span");
    badge.className = "level level-" + alert.level_label;
    badge.textContent = alert.level + " " + alert.level_label;
    cell(tr, badge);
    cell(tr, text(alert.rule_id));
    cell(tr, text(alert.description)).className = "wrap";
    cell(tr, text(alert.agent_id + " " + alert.agent_name));
    cell(tr, text(alert.misp_event_id ? "MISP event " + alert.misp_event_id : ""));
    return tr;
  }

  function watch(table) {
    var status = document.getElementById("live-status");
    var body = table.tBodies[0];
    var max = parseInt(table.getAttribute("data-live-max") || "0", 10);
    var added = 0;

    function poll() {
      var query = table.getAttribute("data-live-query");
      var url = "/live/alerts?after=" + encodeURIComponent(table.getAttribute("data-live-after")) +
        (query ? "&" + query : "");
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) {
          if (response.status === 401) {
            if (status) { status.textContent = "Session expired: reload the page to log in again."; }
            return null;
          }
          return response.ok ? response.json() : null;
        })
        .then(function (data) {
          if (!data) { return; }
          data.alerts.forEach(function (alert) {
            body.insertBefore(alertRow(alert), body.firstChild);
            added += 1;
          });
          while (max > 0 && body.rows.length > max) {
            body.deleteRow(body.rows.length - 1);
          }
          table.setAttribute("data-live-after", String(data.last_seq));
          if (status && data.alerts.length > 0) {
            status.textContent = added + " new alert" + (added === 1 ? "" : "s") + " since the page loaded.";
          }
        })
        .catch(function () {
          if (status) { status.textContent = "Live updates paused: the server did not respond."; }
        })
        .then(function () { window.setTimeout(poll, POLL_MS); });
    }

    window.setTimeout(poll, POLL_MS);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var tables = document.querySelectorAll("table[data-live-after]");
    for (var i = 0; i < tables.length; i += 1) {
      watch(tables[i]);
    }
  });
}());
