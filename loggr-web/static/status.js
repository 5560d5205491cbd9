// loggr status page: live updates from /status/stream (server-sent events, one JSON snapshot
// every two seconds). The page is complete without this script; it only refreshes the
// figures in place. Text goes in through textContent only (never HTML), so nothing the
// snapshot carries can inject markup.
'use strict';

(function () {
  if (typeof window.EventSource !== 'function') {
    return;
  }

  function byId(id) {
    return document.getElementById(id);
  }

  function setText(id, text, className) {
    const element = byId(id);
    if (element) {
      element.textContent = text;
      if (className !== undefined) {
        element.className = className;
      }
    }
  }

  function figures(list) {
    if (!list || list.length === 0) {
      return '-';
    }
    return list.map(function (f) { return f.name + ' ' + f.value; }).join(', ');
  }

  // Replaces the rows of tbody#id with one row per item; `cells` maps an item to
  // [{text, className, small, colSpan}].
  function fillRows(id, items, cells) {
    const body = byId(id);
    if (!body || !Array.isArray(items)) {
      return;
    }
    const rows = items.map(function (item) {
      const row = document.createElement('tr');
      cells(item).forEach(function (cell) {
        const td = document.createElement('td');
        td.textContent = cell.text;
        if (cell.className) {
          td.className = cell.className;
        }
        if (cell.colSpan) {
          td.colSpan = cell.colSpan;
        }
        if (cell.small) {
          td.append(' ');
          const small = document.createElement('small');
          small.textContent = cell.small;
          td.append(small);
        }
        row.append(td);
      });
      return row;
    });
    body.replaceChildren.apply(body, rows);
  }

  function render(s) {
    const store = s.store || {};
    if (store.ok) {
      setText('store-state', store.backend + ', reachable (' + store.ms + ' ms)', '');
      setText('store-events', String(store.events));
      setText('store-recent', store.recent + ' events (' + store.rate + ' per second)');
      setText('store-newest', store.newest || 'none');
    } else {
      setText('store-state', store.backend + ', unreachable', 'error');
      setText('store-events', 'unknown');
      setText('store-recent', 'unknown');
      setText('store-newest', 'unknown');
    }
    fillRows('components', s.components, function (c) {
      return [
        { text: c.name, small: c.url },
        c.up ? { text: 'up (' + c.ms + ' ms)', className: 'up' }
          : { text: 'down: ' + c.error, className: 'error' },
        { text: figures(c.counters) },
        { text: figures(c.listeners) },
      ];
    });
    // Connected clients: one row per client, one per component with unlisted ones, or 'none'.
    const clients = [];
    (s.components || []).forEach(function (c) {
      (c.clients || []).forEach(function (k) {
        clients.push([{ text: c.name }, { text: k.listener }, { text: k.peer },
          { text: k.protocol }, { text: k.since }]);
      });
      if (c.unlisted) {
        clients.push([{ text: c.name }, { text: c.unlisted + ' more, not listed', colSpan: 4 }]);
      }
    });
    if (clients.length === 0) {
      clients.push([{ text: 'none', colSpan: 5 }]);
    }
    fillRows('clients', clients, function (cells) { return cells; });
    fillRows('queues', s.queues, function (q) {
      return q.error
        ? [{ text: q.name }, { text: 'unknown: ' + q.error, className: 'error' }, { text: '-' }]
        : [{ text: q.name }, { text: String(q.messages) }, { text: String(q.consumers) }];
    });
    fillRows('spools', s.spools, function (p) {
      return p.error
        ? [{ text: p.key }, { text: 'unknown: ' + p.error, className: 'error' }]
        : [{ text: p.key }, { text: String(p.length) }];
    });
    setText('live', 'Live: figures of ' + s.time + '.', 'live');
  }

  const source = new EventSource('/status/stream');
  source.onmessage = function (message) {
    let snapshot;
    try {
      snapshot = JSON.parse(message.data);
    } catch (error) {
      return;
    }
    render(snapshot);
  };
  source.onerror = function () {
    // The browser retries on its own while the stream can come back; a 401 (the session
    // ended) closes it for good.
    if (source.readyState === EventSource.CLOSED) {
      setText('live', 'Live updates stopped (reload the page; you may need to log in again).', 'live error');
    } else {
      setText('live', 'Live updates interrupted, reconnecting…', 'live error');
    }
  };
})();
