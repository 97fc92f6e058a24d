/* Automations pages: drag to set priority (SortableJS, saved at once through htmx), and the
   builder's trigger select, which re-renders the form with the actions that fit. Without
   JavaScript the up/down buttons and the "Use this trigger" button do the same. */
(function () {
  "use strict";

  function initSortable(root) {
    if (typeof Sortable === "undefined") return;
    root.querySelectorAll("ol[data-sortable]").forEach(function (list) {
      if (list.dataset.sortableReady) return;
      list.dataset.sortableReady = "1";
      Sortable.create(list, {
        handle: ".drag-handle",
        animation: 150,
        // Pointer events instead of native drag and drop: the same behaviour in every
        // browser, touch screens included.
        forceFallback: true,
        onEnd: function (event) {
          if (event.oldIndex === event.newIndex) return;
          var order = Array.prototype.map.call(
            list.querySelectorAll("li[data-id]"),
            function (item) { return item.dataset.id; }
          );
          var trigger = list.dataset.trigger;
          htmx.ajax("POST", list.dataset.reorderUrl, {
            source: list,
            target: "#group-" + trigger,
            swap: "innerHTML",
            values: { trigger: trigger, order: order.join(",") },
          });
        },
      });
    });
  }

  function initBuilder(root) {
    root.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () {
        var form = select.form;
        var op = document.createElement("input");
        op.type = "hidden";
        op.name = "op";
        op.value = select.dataset.autosubmit;
        form.appendChild(op);
        form.submit();
      });
    });
  }

  function init() {
    initSortable(document);
    initBuilder(document);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
  // Lists swapped in by htmx (after a reorder or a move) become sortable again.
  document.addEventListener("htmx:load", function (event) { initSortable(event.target.parentNode || document); });
})();
