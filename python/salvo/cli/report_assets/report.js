// salvo explain report: the page of report/index.html. It reads SALVO_REPORT.meta (the run)
// and the row shards (data/*.js, loaded as <script src>: no fetch or XHR, so the page works
// from file:// without a server), shows the first page as soon as the first shard is in,
// then loads the others; filtering by class and sorting by score work on all the rows.
(function () {
  "use strict";
  var R = window.SALVO_REPORT;
  var meta = R.meta;
  var PAGE_ROWS = 50;
  var F = {};
  meta.fields.forEach(function (name, i) { F[name] = i; });
  var state = {rows: [], view: null, page: 0, loaded: 0, cls: "", sort: "input"};

  function $(id) { return document.getElementById(id); }

  function esc(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }

  // a path relative to the output folder, as a URL relative to report/index.html
  function url(path) {
    return "../" + path.split("/").map(encodeURIComponent).join("/");
  }

  function classKey(row) {
    if (row[F.status] === "failed") { return "f:"; }
    if (row[F.label] !== null) { return "c:" + row[F.label]; }
    if (row[F["class"]] !== null) { return "c:class " + row[F["class"]]; }
    if (row[F.target] === null) {
      return meta.task === "detection" ? "c:(no box found)" : "c:(no target)";
    }
    return "c:" + String(row[F.target]);
  }

  function img(path, alt, link) {
    if (!path) { return ""; }
    var tag = '<img loading="lazy" src="' + esc(url(path)) + '" alt="' + esc(alt) + '">';
    return link ? '<a href="' + esc(url(link)) + '">' + tag + "</a>" : tag;
  }

  function header() {
    var s = meta.summary || {}, v = meta.versions || {};
    var versions = Object.keys(v).map(function (k) { return k + " " + v[k]; }).join(", ");
    var kwargs = JSON.stringify(meta.method_kwargs || {});
    var legend = "linear-gradient(to right, " + meta.legend.join(", ") + ")";
    $("run").innerHTML =
      "<h1>" + esc(meta.title) + "</h1>" +
      '<dl><dt>command</dt><dd><code id="command">' + esc(meta.command) + "</code></dd>" +
      "<dt>versions</dt><dd id=\"versions\">" + esc(versions) + "</dd>" +
      "<dt>model</dt><dd>" + esc((meta.model || {}).source || "?") + " on " +
      esc((meta.device || {}).name || "?") + "</dd>" +
      "<dt>method</dt><dd>" + esc(meta.task) + ", " + esc(meta.method) + " (" +
      esc(meta.mode) + ")" + (kwargs === "{}" ? "" : " " + esc(kwargs)) + "; targets " +
      esc(meta.targets === "-1" || meta.targets === -1 ? "all" : meta.targets) + "; labels " +
      esc(meta.labels || (meta.task === "detection" ? "the detector's" : "class indices")) + "</dd>" +
      "<dt>images</dt><dd>" + esc(s.done || 0) + " done, " + esc(s.skipped || 0) +
      " skipped, " + '<span class="bad">' + esc(s.failed || 0) + " failed</span>" +
      (meta.ignored ? ", " + esc(meta.ignored) + " ignored" : "") + "; " +
      esc(meta.rows) + " rows; written " + esc(meta.written) + "</dd>" +
      '<dt>map colours</dt><dd>low <span id="legend" style="background:' + legend +
      '"></span> high <span class="legend-text">saliency (each map scaled to its own ' +
      "range)</span></dd></dl>";
  }

  function score(row) {
    var s = row[F.score];
    return s === null || s === undefined ? "" : Number(s).toPrecision(4);
  }

  function render() {
    var view = state.view || state.rows.map(function (_, i) { return i; });
    var pages = Math.max(1, Math.ceil(view.length / PAGE_ROWS));
    state.page = Math.min(state.page, pages - 1);
    var start = state.page * PAGE_ROWS, html = [];
    view.slice(start, start + PAGE_ROWS).forEach(function (index, n) {
      var r = state.rows[index], failed = r[F.status] === "failed";
      var label = r[F.label] !== null ? r[F.label] :
        (r[F["class"]] !== null ? "class " + r[F["class"]] : "");
      if (!failed && r[F.target] === null && r[F.output] === null) {
        label = meta.task === "detection" ? "(no box found)" : "(no target)";
      }
      if (r[F.box]) { label += " (box " + r[F.target] + ")"; }
      var overlay = r[F.thumb_overlay] || (meta.overlay ? r[F.thumb_map] : null);
      html.push(
        '<tr class="row' + (failed ? " failed" : "") + '" data-index="' + index + '">' +
        "<td>" + (start + n + 1) + "</td>" +
        '<td class="input">' + img(r[F.thumb_input], "input") +
        '<div class="name">' + esc(r[F.name]) + "</div></td>" +
        '<td class="map">' + img(r[F.thumb_map], "map", r[F.output]) + "</td>" +
        '<td class="overlay">' + img(overlay, "overlay", r[F.output]) + "</td>" +
        '<td class="label">' + esc(label) + "</td>" +
        '<td class="score">' + score(r) + "</td>" +
        "<td>" + esc(meta.method || "") + "</td>" +
        '<td class="num">' + esc(r[F.inferences] === null ? "" : r[F.inferences]) + "</td>" +
        '<td class="num">' + esc(r[F.seconds] === null ? "" : r[F.seconds]) + "</td>" +
        '<td class="status">' + esc(r[F.status]) +
        (r[F.reason] ? '<div class="' + (failed ? "reason" : "note") + '">' + esc(r[F.reason]) +
         "</div>" : "") + "</td></tr>");
    });
    document.querySelector("#rows tbody").innerHTML = html.join("");
    $("page-info").textContent = "page " + (state.page + 1) + " of " + pages + " (" +
      view.length + " rows)";
    $("prev").disabled = state.page === 0;
    $("next").disabled = state.page >= pages - 1;
  }

  function update() {
    var rows = state.rows, view = [];
    for (var i = 0; i < rows.length; i++) {
      if (!state.cls || classKey(rows[i]) === state.cls) { view.push(i); }
    }
    if (state.sort !== "input") {
      var sign = state.sort === "score-desc" ? -1 : 1;
      view.sort(function (a, b) {
        var x = rows[a][F.score], y = rows[b][F.score];
        if (x === null || y === null) { return (x === null) - (y === null) || a - b; }
        return sign * (x - y) || a - b;
      });
    }
    state.view = view;
    state.page = 0;
    render();
  }

  function classOptions() {
    var counts = {}, failed = 0;
    state.rows.forEach(function (r) {
      var k = classKey(r);
      if (k === "f:") { failed++; } else { counts[k] = (counts[k] || 0) + 1; }
    });
    var keys = Object.keys(counts).sort(function (a, b) {
      return counts[b] - counts[a] || (a < b ? -1 : 1);
    });
    var html = ['<option value="">all (' + state.rows.length + ")</option>"];
    if (failed) {
      html.push('<option value="f:">failed images (' + failed + ")</option>");
    }
    keys.forEach(function (k) {
      html.push('<option value="' + esc(k) + '">' + esc(k.slice(2)) + " (" + counts[k] +
        ")</option>");
    });
    $("class-filter").innerHTML = html.join("");
  }

  function allLoaded() {
    var rows = [];
    for (var n = 0; n < meta.shards.length; n++) { rows = rows.concat(R.shards[n]); }
    state.rows = rows;
    classOptions();
    $("class-filter").disabled = false;
    $("sort").disabled = false;
    $("status").textContent = "";
    update();
    document.body.setAttribute("data-loaded", "all");
    document.body.setAttribute("data-all-rows-ms", performance.now().toFixed(1));
  }

  R.shard = function (n, rows) {
    R.shards[n] = rows;
    state.loaded++;
    if (n === 0) {
      state.rows = rows;
      render();
      document.body.setAttribute("data-loaded", "first");
      // milliseconds from the start of the page's navigation to its first page of rows
      document.body.setAttribute("data-first-page-ms", performance.now().toFixed(1));
      for (var k = 1; k < meta.shards.length; k++) { loadShard(k); }
    }
    if (state.loaded === meta.shards.length) { allLoaded(); } else {
      $("status").textContent = "loading rows: " + state.loaded + " of " +
        meta.shards.length + " files";
    }
  };

  function load() {
    header();
    $("class-filter").addEventListener("change", function (e) {
      state.cls = e.target.value; update();
    });
    $("sort").addEventListener("change", function (e) { state.sort = e.target.value; update(); });
    $("prev").addEventListener("click", function () { state.page--; render(); });
    $("next").addEventListener("click", function () { state.page++; render(); });
    if (!meta.shards.length) { allLoaded(); return; }
    loadShard(0);
  }

  // the first shard alone, so that the first page shows at once; the others after it
  function loadShard(n) {
    var name = meta.shards[n], s = document.createElement("script");
    s.src = "data/" + encodeURIComponent(name);
    s.onerror = function () { $("status").textContent = "missing data file data/" + name; };
    document.body.appendChild(s);
  }

  load();
})();
