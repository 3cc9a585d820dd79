// The dashboard's line charts, drawn as inline SVG by hand (no library, no network).
// GwCharts.draw(container, spec) renders one chart into `container`:
//   spec.id      stable name (data-chart; used by the page's tests)
//   spec.title   heading; spec.unit: the y axis unit ("req/s", "%", "ms")
//   spec.times   point times, Unix ms, oldest first; spec.from / spec.to: the x domain
//   spec.series  [{ name, color (palette index), dash (bool), values: [v | null per time] }]
//   spec.yMax    a fixed top of the y axis (100 for ratios), else spec.minTop: the lowest auto top
//   spec.empty   what the chart says when no series has a value
// A null value is a gap in the line. Hovering shows the values at the nearest point; the
// legend shows each series' last value.
(function () {
  "use strict";
  var H = 180, M = { l: 44, r: 14, t: 18, b: 24 };
  var SECOND = 1000;
  var TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900].map(function (s) { return s * SECOND; });

  function esc(s) { return String(s).replace(/[&<>"']/g, function (c) { return "&#" + c.charCodeAt(0) + ";"; }); }

  /** A short label for a value: 3 significant digits at most, no exponent. */
  function fmt(v) {
    if (v == null || !isFinite(v)) return "–";
    var a = Math.abs(v);
    if (a === 0) return "0";
    if (a >= 100) return v.toFixed(0);
    if (a >= 10) return v.toFixed(1);
    if (a >= 1) return v.toFixed(2);
    return Number(v.toPrecision(2)).toString();
  }

  /** A round step (1, 2 or 5 times a power of ten) that cuts `span` in about `n` parts. */
  function niceStep(span, n) {
    var raw = span / n;
    var p = Math.pow(10, Math.floor(Math.log10(raw)));
    var f = raw / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
  }

  function two(n) { return (n < 10 ? "0" : "") + n; }
  function clock(t, seconds) {
    var d = new Date(t);
    return two(d.getHours()) + ":" + two(d.getMinutes()) + (seconds ? ":" + two(d.getSeconds()) : "");
  }

  function last(values) {
    for (var i = values.length - 1; i >= 0; i--) if (values[i] != null) return values[i];
    return null;
  }

  function color(s) { return "var(--c" + (s.color % 10) + ")"; }

  function draw(el, spec) {
    var title = "<div class=chart-title>" + esc(spec.title) + " <span class=dim>(" + esc(spec.unit) + ")</span></div>";
    var max = 0, any = false;
    spec.series.forEach(function (s) {
      s.values.forEach(function (v) { if (v != null) { any = true; if (v > max) max = v; } });
    });
    if (!any) {
      el.innerHTML = title + "<div class=empty data-empty=\"" + esc(spec.id) + "\">" + esc(spec.empty) + "</div>";
      return;
    }
    var w = Math.max(260, Math.floor(el.clientWidth || 360));
    var pw = w - M.l - M.r, ph = H - M.t - M.b;
    var top = spec.yMax != null ? spec.yMax : Math.max(max, spec.minTop || 1e-6);
    var step = niceStep(top, 4);
    if (spec.yMax == null) top = Math.ceil(top / step - 1e-9) * step;
    var decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
    var span = Math.max(1, spec.to - spec.from);
    function x(t) { return M.l + (t - spec.from) / span * pw; }
    function y(v) { return M.t + ph - Math.min(v, top) / top * ph; }

    var svg = ["<svg class=chart data-chart=\"" + esc(spec.id) + "\" width=\"" + w + "\" height=\"" + H +
      "\" viewBox=\"0 0 " + w + " " + H + "\" role=img aria-label=\"" + esc(spec.title + " (" + spec.unit + ")") + "\">"];
    // y axis: grid lines and labels, the unit above them
    svg.push("<text class=axis x=4 y=10>" + esc(spec.unit) + "</text>");
    for (var v = 0; v <= top + step / 1000; v += step) {
      var yy = y(v).toFixed(1);
      svg.push("<line class=grid x1=" + M.l + " x2=" + (M.l + pw) + " y1=" + yy + " y2=" + yy + "></line>");
      svg.push("<text class=axis x=" + (M.l - 5) + " y=" + (Number(yy) + 4) + " text-anchor=end>" + v.toFixed(decimals) + "</text>");
    }
    // x axis: clock times at a round step, about 5 of them
    var tstep = TIME_STEPS.filter(function (s) { return span / s <= 5; })[0] || TIME_STEPS[TIME_STEPS.length - 1];
    for (var t = Math.ceil(spec.from / tstep) * tstep; t <= spec.to; t += tstep) {
      var xx = x(t).toFixed(1);
      svg.push("<line class=tick x1=" + xx + " x2=" + xx + " y1=" + (M.t + ph) + " y2=" + (M.t + ph + 4) + "></line>");
      svg.push("<text class=axis x=" + xx + " y=" + (H - 6) + " text-anchor=middle>" + clock(t, tstep < 60 * SECOND) + "</text>");
    }
    svg.push("<line class=axisline x1=" + M.l + " x2=" + (M.l + pw) + " y1=" + (M.t + ph) + " y2=" + (M.t + ph) + "></line>");
    // the lines: a gap where a value is null; a dot at each series' last value
    spec.series.forEach(function (s) {
      var d = "", run = 0, n = 0, smax = 0, lastAt = -1;
      // a point alone between gaps is a dot: a tiny segment with round caps
      function end() { if (run === 1) d += "h0.1"; run = 0; }
      s.values.forEach(function (v, i) {
        if (v == null) { end(); return; }
        d += (run ? "L" : "M") + x(spec.times[i]).toFixed(1) + " " + y(v).toFixed(1);
        run++; n++; lastAt = i;
        if (v > smax) smax = v;
      });
      end();
      svg.push("<path class=\"line" + (s.dash ? " dash" : "") + "\" style=\"stroke:" + color(s) + "\" data-series=\"" + esc(s.name) +
        "\" data-points=" + n + " data-max=" + smax + " d=\"" + d + "\"></path>");
      if (lastAt >= 0) {
        svg.push("<circle r=2.5 style=\"fill:" + color(s) + "\" cx=" + x(spec.times[lastAt]).toFixed(1) + " cy=" + y(s.values[lastAt]).toFixed(1) + "></circle>");
      }
    });
    svg.push("<line class=hover x1=0 x2=0 y1=" + M.t + " y2=" + (M.t + ph) + " visibility=hidden></line>");
    svg.push("<rect class=catch x=" + M.l + " y=" + M.t + " width=" + pw + " height=" + ph + "></rect></svg>");

    var legend = spec.series.map(function (s) {
      var lv = last(s.values);
      return "<li data-series=\"" + esc(s.name) + "\" data-last=\"" + (lv == null ? "" : lv) + "\"><i class=\"swatch" + (s.dash ? " dash" : "") +
        "\" style=\"border-color:" + color(s) + "\"></i>" + esc(s.name) + " <b>" + fmt(lv) + "</b> <span class=dim>" + esc(spec.unit) + "</span></li>";
    }).join("");
    el.innerHTML = title + "<div class=plot>" + svg.join("") + "<div class=tip hidden></div></div><ul class=legend>" + legend + "</ul>";
    hover(el, spec, x);
  }

  /** The crosshair and the values at the point nearest the pointer; kept across redraws. */
  function hover(el, spec, x) {
    var svg = el.querySelector("svg"), line = el.querySelector("line.hover"), tip = el.querySelector(".tip");
    function show(t) {
      var best = 0;
      spec.times.forEach(function (tt, i) { if (Math.abs(tt - t) < Math.abs(spec.times[best] - t)) best = i; });
      var at = spec.times[best], xx = x(at);
      line.setAttribute("x1", xx); line.setAttribute("x2", xx); line.setAttribute("visibility", "visible");
      tip.innerHTML = "<b>" + clock(at, true) + "</b>" + spec.series.map(function (s) {
        return "<div><i class=\"swatch" + (s.dash ? " dash" : "") + "\" style=\"border-color:" + color(s) + "\"></i>" +
          esc(s.name) + " <b>" + fmt(s.values[best]) + "</b> " + esc(spec.unit) + "</div>";
      }).join("");
      tip.hidden = false;
      var right = xx > svg.clientWidth / 2;
      tip.style.left = right ? "" : (xx + 10) + "px";
      tip.style.right = right ? (svg.clientWidth - xx + 10) + "px" : "";
      el.hoverAt = at;
    }
    svg.addEventListener("mousemove", function (e) {
      var r = svg.getBoundingClientRect();
      var px = e.clientX - r.left;
      show(spec.from + (px - M.l) / Math.max(1, x(spec.to) - M.l) * (spec.to - spec.from));
    });
    svg.addEventListener("mouseleave", function () { line.setAttribute("visibility", "hidden"); tip.hidden = true; el.hoverAt = null; });
    if (el.hoverAt != null) show(el.hoverAt);
  }

  window.GwCharts = { draw: draw, fmt: fmt };
})();
