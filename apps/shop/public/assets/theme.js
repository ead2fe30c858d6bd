// Applies the saved theme before the page paints (a classic script in <head>, so there is no flash).
(function () {
  var saved = null;
  try { saved = localStorage.getItem('tether.theme'); } catch { /* storage blocked */ }
  var dark = saved ? saved === 'dark' : window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches;
  document.documentElement.setAttribute('data-theme', dark ? 'dark' : 'light');
})();
