// Collects uncaught errors and rejected promises in window.__errors, so that the browser
// test (and a curious operator) can see that the page ran cleanly. Imported first.

window.__errors = [];

window.addEventListener('error', (event) => {
  window.__errors.push(String(event.message || event.error || 'error'));
});

window.addEventListener('unhandledrejection', (event) => {
  const reason = event.reason;
  window.__errors.push(String((reason && reason.stack) || reason));
});
