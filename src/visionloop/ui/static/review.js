// The review tool: the proposed boxes drawn in an SVG over the image, edited with the mouse and the
// keyboard, and the decision posted to /api/review/tasks/ID/decision. Text from the server goes into
// the page only through textContent (never innerHTML).
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const MIN_SIDE = 2; // pixels of the image: a smaller drawn box is a click, not a box
  const root = document.getElementById("review");
  const img = document.getElementById("review-image");
  const svg = document.getElementById("overlay");
  const select = document.getElementById("class-select");
  const message = document.getElementById("message");
  const csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");

  let task = null;
  let classes = [];
  let boxes = []; // {cls, x1, y1, x2, y2, score}
  let selected = -1;
  let edited = false;
  let busy = false;
  let drag = null;
  const passed = new Set(); // tasks passed over with "next" in this page

  function say(text, isError) {
    message.textContent = text;
    message.className = isError ? "error" : "";
  }

  function color(name) {
    let h = 0;
    for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) % 360;
    return "hsl(" + h + ", 80%, 45%)";
  }

  function el(name, attrs) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    return node;
  }

  function render() {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    if (!task) return;
    const side = Math.max(task.width, task.height);
    const stroke = Math.max(1, side / 300);
    const handle = Math.max(3, side / 60);
    boxes.forEach(function (b, i) {
      const g = el("g", { "class": "box-group" + (i === selected ? " selected" : "") });
      const rect = el("rect", {
        "class": "box", "data-index": i, x: b.x1, y: b.y1,
        width: b.x2 - b.x1, height: b.y2 - b.y1, stroke: color(b.cls), "stroke-width": stroke,
      });
      const label = el("text", {
        "class": "label", x: b.x1 + stroke, y: Math.max(b.y1 - stroke, side / 25),
        "font-size": side / 25, fill: color(b.cls),
      });
      label.textContent = b.cls + (b.score !== null ? " " + b.score.toFixed(2) : "");
      g.appendChild(rect);
      g.appendChild(label);
      if (i === selected) {
        for (const [name, x, y] of [["nw", b.x1, b.y1], ["ne", b.x2, b.y1], ["sw", b.x1, b.y2], ["se", b.x2, b.y2]]) {
          g.appendChild(el("rect", {
            "class": "handle", "data-handle": name, x: x - handle / 2, y: y - handle / 2,
            width: handle, height: handle,
          }));
        }
      }
      svg.appendChild(g);
    });
    root.dataset.boxes = String(boxes.length);
  }

  function point(event) {
    const r = svg.getBoundingClientRect();
    const x = ((event.clientX - r.left) / r.width) * task.width;
    const y = ((event.clientY - r.top) / r.height) * task.height;
    return { x: Math.min(Math.max(x, 0), task.width), y: Math.min(Math.max(y, 0), task.height) };
  }

  function normalize(b) {
    return {
      cls: b.cls, score: b.score,
      x1: Math.min(b.x1, b.x2), y1: Math.min(b.y1, b.y2), x2: Math.max(b.x1, b.x2), y2: Math.max(b.y1, b.y2),
    };
  }

  function changed(i) {
    boxes[i].score = null; // a person's box has no model score
    edited = true;
  }

  function choose(index) {
    selected = index;
    if (index >= 0) select.value = boxes[index].cls;
    render();
  }

  svg.addEventListener("pointerdown", function (event) {
    if (!task || busy || event.button !== 0) return;
    event.preventDefault();
    const p = point(event);
    const target = event.target;
    if (target.dataset.handle !== undefined && selected >= 0) {
      drag = { mode: "resize", corner: target.dataset.handle, index: selected };
    } else if (target.dataset.index !== undefined) {
      const i = Number(target.dataset.index);
      choose(i);
      drag = { mode: "move", index: i, start: p, orig: Object.assign({}, boxes[i]) };
    } else {
      boxes.push({ cls: select.value || classes[0], x1: p.x, y1: p.y, x2: p.x, y2: p.y, score: null });
      drag = { mode: "draw", index: boxes.length - 1 };
      choose(boxes.length - 1);
    }
    svg.setPointerCapture(event.pointerId);
  });

  svg.addEventListener("pointermove", function (event) {
    if (!drag) return;
    const p = point(event);
    const b = boxes[drag.index];
    if (drag.mode === "move") {
      const o = drag.orig;
      const dx = Math.min(Math.max(p.x - drag.start.x, -o.x1), task.width - o.x2);
      const dy = Math.min(Math.max(p.y - drag.start.y, -o.y1), task.height - o.y2);
      Object.assign(b, { x1: o.x1 + dx, y1: o.y1 + dy, x2: o.x2 + dx, y2: o.y2 + dy });
    } else if (drag.mode === "draw") {
      Object.assign(b, { x2: p.x, y2: p.y });
    } else {
      if (drag.corner.includes("n")) b.y1 = p.y; else b.y2 = p.y;
      if (drag.corner.includes("w")) b.x1 = p.x; else b.x2 = p.x;
    }
    changed(drag.index);
    render();
  });

  function endDrag() {
    if (!drag) return;
    const i = drag.index;
    boxes[i] = normalize(boxes[i]);
    const b = boxes[i];
    if (b.x2 - b.x1 < MIN_SIDE || b.y2 - b.y1 < MIN_SIDE) {
      if (drag.mode === "draw") {
        boxes.splice(i, 1);
        selected = -1;
      }
    }
    drag = null;
    render();
  }
  svg.addEventListener("pointerup", endDrag);
  svg.addEventListener("pointercancel", endDrag);

  select.addEventListener("change", function () {
    if (selected >= 0 && boxes[selected].cls !== select.value) {
      boxes[selected].cls = select.value;
      changed(selected);
      render();
    }
    select.blur(); // keep the keyboard shortcuts working
  });

  function pickClass(n) {
    if (n < 1 || n > classes.length) return;
    select.value = classes[n - 1];
    select.dispatchEvent(new Event("change"));
  }

  function removeSelected() {
    if (selected < 0) return;
    boxes.splice(selected, 1);
    selected = -1;
    edited = true;
    render();
  }

  function fillClasses(names) {
    if (names.join("\n") === classes.join("\n")) return;
    classes = names;
    while (select.firstChild) select.removeChild(select.firstChild);
    names.forEach(function (name, i) {
      const option = document.createElement("option");
      option.value = name;
      option.textContent = (i < 9 ? i + 1 + ": " : "") + name;
      select.appendChild(option);
    });
  }

  function show(data) {
    fillClasses(data.classes);
    document.getElementById("left").textContent = data.stats.left + " left";
    task = data.task;
    selected = -1;
    edited = false;
    drag = null;
    if (!task) {
      boxes = [];
      img.removeAttribute("src");
      svg.removeAttribute("viewBox");
      document.getElementById("task-name").textContent = "";
      document.getElementById("task-meta").textContent = "";
      root.dataset.taskId = "";
      root.dataset.state = "empty";
      render();
      say("The queue is empty: nothing left to review.", false);
      return;
    }
    boxes = task.proposal.map(function (p) {
      return { cls: p["class"], x1: p.box[0], y1: p.box[1], x2: p.box[2], y2: p.box[3],
        score: typeof p.score === "number" ? p.score : null };
    });
    document.getElementById("task-name").textContent = task.name;
    document.getElementById("task-meta").textContent =
      "task " + task.id + " · model v" + task.model_version + " · " + task.status +
      " · priority " + task.priority.toFixed(2);
    svg.setAttribute("viewBox", "0 0 " + task.width + " " + task.height);
    root.dataset.state = "loading";
    say("", false);
    img.onload = function () {
      root.dataset.taskId = String(task.id);
      root.dataset.state = "ready";
    };
    img.src = "/api/review/tasks/" + task.id + "/image";
    render();
  }

  async function call(url, options) {
    const response = await fetch(url, Object.assign({ credentials: "same-origin" }, options || {}));
    const data = await response.json().catch(function () { return {}; });
    if (!response.ok) {
      const text = [data.message || data.error || response.statusText, data.fix].filter(Boolean).join(" — ");
      throw new Error(text);
    }
    return data;
  }

  async function loadNext() {
    busy = true;
    try {
      const skip = Array.from(passed).join(",");
      show(await call("/api/review/next" + (skip ? "?skip=" + skip : "")));
    } catch (err) {
      say(err.message, true);
    } finally {
      busy = false;
    }
  }

  async function submit(decision) {
    if (!task || busy) return;
    const body = { decision: decision, expected_status: task.status };
    if (decision === "accept" && edited) {
      body.decision = "edit";
      body.boxes = boxes.map(function (b) {
        return { "class": b.cls, box: [b.x1, b.y1, b.x2, b.y2] };
      });
    }
    busy = true;
    root.dataset.state = "saving";
    try {
      await call("/api/review/tasks/" + task.id + "/decision", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(body),
      });
      busy = false;
      await loadNext();
      if (task || root.dataset.state === "empty") say("Saved (" + body.decision + ").", false);
    } catch (err) {
      busy = false;
      root.dataset.state = "ready";
      say(err.message, true);
    }
  }

  function next() {
    if (task) passed.add(task.id);
    loadNext();
  }

  document.getElementById("btn-accept").addEventListener("click", function () { submit("accept"); });
  document.getElementById("btn-reject").addEventListener("click", function () { submit("reject"); });
  document.getElementById("btn-skip").addEventListener("click", function () { submit("skip"); });
  document.getElementById("btn-next").addEventListener("click", next);

  document.addEventListener("keydown", function (event) {
    const tag = event.target.tagName;
    if (tag === "INPUT" || tag === "TEXTAREA" || event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key;
    if (key === "a") submit("accept");
    else if (key === "r") submit("reject");
    else if (key === "s") submit("skip");
    else if (key === "n") next();
    else if (key === "Delete" || key === "Backspace") removeSelected();
    else if (key === "Escape") choose(-1);
    else if (/^[1-9]$/.test(key)) pickClass(Number(key));
    else return;
    event.preventDefault();
  });

  loadNext();
})();
