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
    var worker = $("#na-worker"), teamPick = $("#na-team");
    // issue #22 §9: each picker lists only who can do the step the action creates
    var only = function (select, listed) {
      var allowed = (listed || "").split("|").filter(Boolean);
      Array.prototype.forEach.call(select.options, function (opt) {
        var off = opt.value !== "" && allowed.indexOf(opt.value) < 0;
        opt.hidden = off; opt.disabled = off;
      });
      if (select.selectedOptions.length && select.selectedOptions[0].disabled) select.value = "";
    };
    var update = function () {
      var o = action.options[action.selectedIndex];
      var kind = o.getAttribute("data-kind") || "none";
      var nfa = o.getAttribute("data-nfa") === "1";
      var radio = $("#na-k-" + (kind === "worker" || kind === "team" ? kind : "none"));
      if (radio) radio.checked = true;
      var team = o.getAttribute("data-team");
      var byLocality = o.getAttribute("data-locality") === "1";  // R-C5: left blank, workflow finds the team
      only(worker, o.getAttribute("data-workers"));
      only(teamPick, o.getAttribute("data-teams"));
      teamPick.value = team || "";
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
      else if (kind === "team" && byLocality) text.push("Goes to the team for the person's locality, unless you choose one.");
      else if (kind === "team") text.push("Goes to a team" + (team ? " (proposed: " + o.getAttribute("data-team-name") + ")" : "") + ".");
      else if (kind === "worker") text.push("Goes to a named worker.");
      if (o.getAttribute("data-send") === "1") text.push("Can be sent immediately.");
      if (reason.required) text.push("A reason is required.");
      if (o.getAttribute("data-requires-form")) text.push("Needs the form " + o.getAttribute("data-requires-form") + " completed.");
      about.textContent = text.join(" ");
    };
    action.addEventListener("change", update);
    var noteNeeded = function () {
      var needs = priority.value !== "normal";
      note.required = needs; noteReq.hidden = !needs;
    };
    priority.addEventListener("change", noteNeeded);
    // refused, the form comes back with what was chosen: keep it, not the action's defaults
    var restored = action.form.hasAttribute("data-restored");
    var kept = restored && {
      kind: ($('input[name="assignee_kind"]:checked', action.form) || {}).value, worker: worker.value,
      team: teamPick.value, send: send.checked, date: date.value
    };
    update();
    noteNeeded();
    if (kept) {
      var radio = $('input[name="assignee_kind"][value="' + (kept.kind || "") + '"]', action.form);
      if (radio) radio.checked = true;
      worker.value = kept.worker; teamPick.value = kept.team;
      if (!send.disabled) send.checked = kept.send;
      if (!date.disabled) date.value = kept.date;
      reason.value = reason.getAttribute("data-chosen") || "";
    }
    var reopen = $("dialog[data-reopen]");
    if (reopen && reopen.showModal) reopen.showModal();
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

  // --- drafts: nothing typed is lost to a reload or a refused save, and a draft never blanks what was saved since (#20) ---
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
    // A draft is compared part by part: a field, a multiselect, one section marker, or a whole table.
    var partOf = function (name, value) {
      if (name.indexOf("t.") === 0) return "t." + name.split(".")[1];
      return name === "completed_sections" ? name + "=" + value : name;
    };
    var parts = function (snapshot) {
      var out = {};
      (snapshot.fields || []).forEach(function (f) { var p = partOf(f[0], f[1]); (out[p] = out[p] || []).push(f); });
      Object.keys(snapshot.rows || {}).forEach(function (k) { (out["t." + k] = out["t." + k] || []).push(snapshot.rows[k]); });
      var text = {};
      Object.keys(out).forEach(function (p) { text[p] = JSON.stringify(out[p]); });
      return text;
    };
    var shown = collect();
    var initial = JSON.stringify(shown);
    var read = function () { try { return JSON.parse(localStorage.getItem(key) || "null"); } catch (err) { return null; } };
    var write = function () {
      var now = collect();
      if (JSON.stringify(now) === initial) { localStorage.removeItem(key); if (status) status.textContent = ""; return; }
      // `base`: what this form was rendered with, so a later page can tell the person's changes from others'
      now.version = version; now.base = shown; now.savedAt = new Date().toISOString();
      localStorage.setItem(key, JSON.stringify(now));
      if (status) status.textContent = "Draft kept in this browser at " + new Date().toLocaleTimeString() + " (not saved yet)";
    };
    var timer = null;
    changed = function () { clearTimeout(timer); timer = setTimeout(write, 300); };
    form.addEventListener("input", changed);
    form.addEventListener("change", changed);
    form.addEventListener("submit", function () { clearTimeout(timer); write(); });

    var named = function (name) { return $$("[name]", form).filter(function (el) { return el.name === name; }); };
    var tableOf = function (part) { return document.querySelector('table[data-table-key="' + part.slice(2) + '"]'); };
    var onForm = function (part) {
      if (part.indexOf("t.") === 0) return !!tableOf(part);
      var f = part.split("=");
      return named(f[0]).some(function (el) { return !el.disabled && (f.length === 1 || el.value === f[1]); });
    };
    var setFields = function (draft, part) {
      (draft.fields || []).forEach(function (f) {
        if (partOf(f[0], f[1]) !== part) return;
        named(f[0]).forEach(function (el) {
          if (el.type === "checkbox" || el.type === "radio") { if (el.value === f[1]) el.checked = !!f[2]; }
          else el.value = f[1];
        });
      });
    };
    var setRows = function (draft, part) {
      var k = part.slice(2), table = tableOf(part), tbody = $("tbody", table);
      var wanted = (draft.rows || {})[k] || [];
      $$("tr", tbody).forEach(function (tr) {
        if (wanted.indexOf(tr.getAttribute("data-row-id")) < 0 && document.getElementById("tpl-" + k)) tr.remove();
      });
      wanted.forEach(function (id) {
        var tr = tbody.querySelector('tr[data-row-id="' + id + '"]') || addRow(k, id);
        if (tr) tbody.appendChild(tr);
      });
      renumber(tbody);
    };
    var apply = function (draft, part) {
      if (part.indexOf("t.") === 0) setRows(draft, part);
      setFields(draft, part);
    };

    // what a part says, in words, for the person choosing between theirs and yours
    var optionText = function (el, value) {
      var o = el && el.tagName === "SELECT" ? $$("option", el).filter(function (x) { return x.value === value; })[0] : null;
      return o ? o.textContent : value;
    };
    var words = function (snapshot, part) {
      var entries = (snapshot.fields || []).filter(function (f) { return partOf(f[0], f[1]) === part; });
      if (part.indexOf("t.") === 0) {
        var ids = (snapshot.rows || {})[part.slice(2)] || [];
        var rows = ids.map(function (id) {
          var prefix = part + "." + id + ".";
          return entries.filter(function (f) { return f[0].indexOf(prefix) === 0 && f[1]; })
            .map(function (f) { return optionText(named(f[0])[0], f[1]); }).join(", ");
        });
        return rows.length ? rows.join(" / ") : "(no rows)";
      }
      if (part.indexOf("completed_sections=") === 0) return entries.length && entries[0][2] ? "completed" : "not completed";
      if (entries.length && entries[0].length === 3) {
        var ticked = entries.filter(function (f) { return f[2]; }).map(function (f) { return f[1]; });
        return ticked.length ? ticked.join(", ") : "(none)";
      }
      var value = entries.length ? entries[0][1] : "";
      return value ? optionText(named(part)[0], value) : "(empty)";
    };
    var labelOf = function (part) {
      var el = part.indexOf("t.") === 0 ? tableOf(part) : named(part.split("=")[0]).filter(function (x) {
        return part.indexOf("=") < 0 || x.value === part.split("=")[1]; })[0];
      var holder = el && el.closest(".field, .section-done");
      var label = holder && $("[id$='-label'], label", holder);
      return label && label.firstChild ? label.firstChild.textContent.trim() : part;
    };
    var conflictChoice = function (part, i, draft) {
      var box = document.createElement("fieldset");
      box.className = "govuk-fieldset conflict";
      var legend = document.createElement("legend");
      legend.className = "govuk-fieldset__legend govuk-fieldset__legend--s";
      legend.textContent = labelOf(part) + ": changed by someone else too";
      box.appendChild(legend);
      var radios = document.createElement("div");
      radios.className = "govuk-radios govuk-radios--small";
      box.appendChild(radios);
      [["theirs", "Keep theirs (saved): " + words(shown, part)], ["yours", "Take yours: " + words(draft, part)]]
        .forEach(function (choice, n) {
          var line = document.createElement("div"); line.className = "govuk-radios__item";
          var input = document.createElement("input");
          input.type = "radio"; input.className = "govuk-radios__input"; input.name = "conflict-" + i; input.value = choice[0];
          input.id = "conflict-" + i + "-" + choice[0]; input.checked = n === 0;
          var label = document.createElement("label"); label.htmlFor = input.id; label.textContent = choice[1];
          label.className = "govuk-label govuk-radios__label";
          line.appendChild(input); line.appendChild(label); radios.appendChild(line);
        });
      return box;
    };

    var draft = read();
    if (form.getAttribute("data-just-saved") === "1") {
      localStorage.removeItem(key);
    } else if (draft) {
      // An old draft without its base can only be trusted against the version it was typed on.
      var base = draft.base ? parts(draft.base) : (draft.version === version ? parts(shown) : null);
      var theirs = parts(shown), yours = parts(draft), take = [], conflicts = [], every = {};
      [base || {}, theirs, yours].forEach(function (o) { Object.keys(o).forEach(function (p) { every[p] = 1; }); });
      Object.keys(every).forEach(function (p) {
        if (yours[p] === theirs[p] || (base && yours[p] === base[p]) || !onForm(p)) return;  // not the person's change
        if (base && theirs[p] === base[p]) take.push(p); else conflicts.push(p);
      });
      var banner = $("#draft-banner");
      if (!take.length && !conflicts.length) {
        localStorage.removeItem(key);
      } else {
        var when = new Date(draft.savedAt).toLocaleString();
        $("#draft-text").textContent = "You have changes from " + when + " that were not saved" +
          (draft.version !== version ? " (the step was saved since: what was saved is kept; only what you changed" +
            " comes back" + (conflicts.length ? ", and where both changed a field you choose" : "") + ")." : ".");
        var list = $("#draft-conflicts");
        conflicts.forEach(function (p, i) { list.appendChild(conflictChoice(p, i, draft)); });
        banner.hidden = false;
        $("#draft-restore").addEventListener("click", function () {
          var chosen = take.concat(conflicts.filter(function (p, i) {
            return document.getElementById("conflict-" + i + "-yours").checked; }));
          chosen.forEach(function (p) { apply(draft, p); });
          banner.hidden = true;
          write();
          if (status) status.textContent = "Your unsaved changes are back: press Save to keep them.";
          var first = $("input:not([type=hidden]), select, textarea", form); if (first) first.focus();
        });
        $("#draft-discard").addEventListener("click", function () { localStorage.removeItem(key); banner.hidden = true; });
      }
    }
  }

  // a refused Finish: take the keyboard to the list of what to do
  var blockers = $("#blockers");
  if (blockers) blockers.focus();
})();
