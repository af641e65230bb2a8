// Poll the JSON API for every request still pending or running, until it finishes.
(function () {
  // Each state in the page's language (the table's data-states), as the server wrote them.
  var table = document.querySelector("table[data-states]");
  var states = table ? JSON.parse(table.dataset.states) : {};
  function update(row, r) {
    row.dataset.state = r.state;
    var badge = row.querySelector('[data-field="state"]');
    badge.textContent = states[r.state] || r.state;
    badge.className = "badge " + r.state;
    var bar = row.querySelector('[data-field="progress"]');
    bar.max = Math.max(r.users_total, 1);
    bar.value = r.users_done;
    row.querySelector('[data-field="users"]').textContent = r.users_done + "/" + r.users_total;
    row.querySelector('[data-field="sessions"]').textContent = r.sessions_revoked;
  }
  function poll() {
    var rows = document.querySelectorAll('tr[data-state="pending"], tr[data-state="running"]');
    if (!rows.length) return;
    Promise.all(Array.prototype.map.call(rows, function (row) {
      return fetch("/api/revocations/" + row.dataset.revocationId, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (resp) { return resp.ok ? resp.json() : null; })
        .then(function (r) { if (r) update(row, r); })
        .catch(function () {});
    })).then(function () { setTimeout(poll, 1000); });
  }
  setTimeout(poll, 1000);
})();
