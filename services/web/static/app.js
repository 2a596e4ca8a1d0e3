/* Tessera desk: dialogs, repeating rows, the next-action form, and drafts kept in this browser. */
(function () {
  "use strict";

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $$(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }

  // --- dialogs -------------------------------------------------------------------------------
  $$("[data-open-dialog]").forEach(function (button) {
    button.addEventListener("click", function () {
      var dialog = document.getElementById(button.getAttribute("data-open-dialog"));
      if (dialog && dialog.showModal) { dialog.showModal(); var first = $("select, input, textarea", dialog); if (first) first.focus(); }
    });
  });
  $$("[data-close-dialog]").forEach(function (button) {
    button.addEventListener("click", function () { var d = button.closest("dialog"); if (d) d.close(); });
  });

  // --- next action form: what the chosen action allows ----------------------------------------
  var action = $("#na-action");
  if (action) {
    var send = $("#na-send"), date = $("#na-date"), reason = $("#na-reason"), about = $("#na-about");
    var priority = $("#na-priority"), note = $("#na-note"), noteReq = $("#na-note-req");
    var update = function () {
      var o = action.options[action.selectedIndex];
      var kind = o.getAttribute("data-kind") || "none";
      var nfa = o.getAttribute("data-nfa") === "1";
      var radio = $("#na-k-" + (kind === "worker" || kind === "team" ? kind : "none"));
      if (radio) radio.checked = true;
      var team = o.getAttribute("data-team");
      if (team) { var sel = $("#na-team"); sel.value = team; }
      send.disabled = o.getAttribute("data-send") !== "1";
      if (send.disabled) send.checked = false;
      date.disabled = o.getAttribute("data-sched") === "" || nfa;
      if (date.disabled) date.value = "";
      var reasons = (o.getAttribute("data-reasons") || "").split("|").filter(Boolean);
      reason.innerHTML = "";
      var none = document.createElement("option"); none.value = ""; none.textContent = reasons.length ? "Choose…" : "None";
      reason.appendChild(none);
      reasons.forEach(function (r) { var x = document.createElement("option"); x.textContent = r; reason.appendChild(x); });
      reason.required = o.getAttribute("data-reason-required") === "1";
      var text = [];
      if (!o.value) text = [];
      else if (nfa) text.push("No further action: no step is created.");
      else if (kind === "self") text.push("Assigned to you.");
      else if (kind === "team") text.push("Goes to a team" + (team ? " (default " + team + ")" : "") + ".");
      else if (kind === "worker") text.push("Goes to a named worker.");
      if (o.getAttribute("data-send") === "1") text.push("Can be sent immediately.");
      if (reason.required) text.push("A reason is required.");
      if (o.getAttribute("data-requires-form")) text.push("Needs the form " + o.getAttribute("data-requires-form") + " completed.");
      about.textContent = text.join(" ");
    };
    action.addEventListener("change", update);
    priority.addEventListener("change", function () {
      var needs = priority.value !== "normal";
      note.required = needs; noteReq.hidden = !needs;
    });
    update();
  }

  // --- repeating rows --------------------------------------------------------------------------
  var counter = 0;
  function renumber(tbody) {
    $$("tr", tbody).forEach(function (tr, i) {
      var th = $("th.rownum", tr);
      if (th && th.firstChild && th.firstChild.nodeType === 3) th.firstChild.nodeValue = String(i + 1);
    });
  }
  function addRow(key, rowId) {
    var tpl = document.getElementById("tpl-" + key);
    var table = document.querySelector('table[data-table-key="' + key + '"]');
    if (!tpl || !table) return null;
    var tbody = $("tbody", table);
    var id = rowId || ("n" + Date.now().toString(36) + (counter++));
    var n = String($$("tr", tbody).length + 1);
    var html = tpl.innerHTML.split("__ROW__").join(id).split("__N__").join(n);
    var holder = document.createElement("tbody");
    holder.innerHTML = html;
    var tr = $("tr", holder);
    tbody.appendChild(tr);
    renumber(tbody);
    return tr;
  }
  document.addEventListener("click", function (e) {
    var t = e.target;
    if (!(t instanceof Element)) return;
    if (t.hasAttribute("data-add-row")) {
      var tr = addRow(t.getAttribute("data-add-row"));
      if (tr) { var first = $("input, select, textarea", tr); if (first) first.focus(); }
      changed();
    } else if (t.hasAttribute("data-row-delete")) {
      var row = t.closest("tr"), body = row.parentNode;
      row.remove(); renumber(body); changed();
    } else if (t.hasAttribute("data-row-up")) {
      var r = t.closest("tr");
      if (r.previousElementSibling) { r.parentNode.insertBefore(r, r.previousElementSibling); renumber(r.parentNode); t.focus(); changed(); }
    }
  });

  // --- drafts end with the session: signed out or timed out (the sign-in page), none stays in this browser ---
  var clearDrafts = function () {
    try {
      Object.keys(localStorage).forEach(function (k) { if (k.indexOf("tessera-draft:") === 0) localStorage.removeItem(k); });
    } catch (err) { /* storage unavailable: nothing kept */ }
  };
  if ($("#sign-in-form")) clearDrafts();
  $$('form[action="/logout"]').forEach(function (f) { f.addEventListener("submit", clearDrafts); });

  // --- drafts: nothing typed is lost to a reload or a refused save -------------------------------
  var form = $("#step-form");
  var changed = function () {};
  if (form && form.getAttribute("data-open") === "1" && window.localStorage) {
    var key = form.getAttribute("data-draft-key");
    var version = form.getAttribute("data-version");
    var status = $("#draft-status");
    var skip = { csrf_token: 1, expected_version: 1 };
    var collect = function () {
      var fields = [], rows = {};
      $$("input, select, textarea", form).forEach(function (el) {
        if (!el.name || skip[el.name] || el.disabled) return;
        if (el.type === "hidden" && /\.__row$/.test(el.name)) {
          var k = el.name.slice(2, -7); (rows[k] = rows[k] || []).push(el.value); return;
        }
        if (el.type === "hidden") return;
        if (el.type === "checkbox" || el.type === "radio") fields.push([el.name, el.value, el.checked]);
        else fields.push([el.name, el.value]);
      });
      return { fields: fields, rows: rows };
    };
    var initial = JSON.stringify(collect());
    var read = function () { try { return JSON.parse(localStorage.getItem(key) || "null"); } catch (err) { return null; } };
    var write = function () {
      var now = collect();
      if (JSON.stringify(now) === initial) { localStorage.removeItem(key); if (status) status.textContent = ""; return; }
      now.version = version; now.savedAt = new Date().toISOString();
      localStorage.setItem(key, JSON.stringify(now));
      if (status) status.textContent = "Draft kept in this browser at " + new Date().toLocaleTimeString() + " (not saved yet)";
    };
    var timer = null;
    changed = function () { clearTimeout(timer); timer = setTimeout(write, 300); };
    form.addEventListener("input", changed);
    form.addEventListener("change", changed);
    form.addEventListener("submit", function () { clearTimeout(timer); write(); });

    var restore = function (draft) {
      Object.keys(draft.rows || {}).forEach(function (k) {
        var table = document.querySelector('table[data-table-key="' + k + '"]');
        if (!table) return;
        var tbody = $("tbody", table);
        var wanted = draft.rows[k];
        $$("tr", tbody).forEach(function (tr) {
          if (wanted.indexOf(tr.getAttribute("data-row-id")) < 0 && document.getElementById("tpl-" + k)) tr.remove();
        });
        wanted.forEach(function (id) {
          var tr = tbody.querySelector('tr[data-row-id="' + id + '"]') || addRow(k, id);
          if (tr) tbody.appendChild(tr);
        });
        renumber(tbody);
      });
      (draft.fields || []).forEach(function (f) {
        $$("[name]", form).forEach(function (el) {
          if (el.name !== f[0]) return;
          if (el.type === "checkbox" || el.type === "radio") { if (el.value === f[1]) el.checked = !!f[2]; }
          else el.value = f[1];
        });
      });
    };

    var draft = read();
    if (form.getAttribute("data-just-saved") === "1") {
      localStorage.removeItem(key);
    } else if (draft && JSON.stringify({ fields: draft.fields, rows: draft.rows }) !== initial) {
      var banner = $("#draft-banner");
      var when = new Date(draft.savedAt).toLocaleString();
      $("#draft-text").textContent = "You have changes from " + when + " that were not saved" +
        (draft.version !== version ? " (the step has changed since: check them before saving)." : ".");
      banner.hidden = false;
      $("#draft-restore").addEventListener("click", function () {
        restore(draft); banner.hidden = true;
        if (status) status.textContent = "Your unsaved changes are back: press Save to keep them.";
        var first = $("input:not([type=hidden]), select, textarea", form); if (first) first.focus();
      });
      $("#draft-discard").addEventListener("click", function () { localStorage.removeItem(key); banner.hidden = true; });
    }
  }

  // a refused Finish: take the keyboard to the list of what to do
  var blockers = $("#blockers");
  if (blockers) blockers.focus();
})();
