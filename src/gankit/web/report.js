// The report's few lines of script (report.py inlines this file): the grid slider, the 2D view of
// the game, and, when served by `gankit serve`, the live reload. Each part runs when its element is there.

function initGrid() {
  const grids = JSON.parse(document.getElementById('grid-data').textContent);
  const s = document.getElementById('grid-slider'), img = document.getElementById('grid-img'), label = document.getElementById('grid-step');
  if (!s) return;
  const show = () => { const g = grids[+s.value]; img.src = g[1]; label.textContent = 'step ' + g[0]; };
  s.addEventListener('input', show);
}

function initField() {
  // GAN Lab's picture of a 2D GAN, from the run's own snapshots: D's output as a heat map over the
  // plane (green: D says real; purple: D says generated), real points (green), generated points
  // (purple) and, for some of them, the direction G's gradient moves them (arrows)
  const snaps = JSON.parse(document.getElementById('snapshot-data').textContent);
  const c = document.getElementById('field'), ctx = c.getContext('2d'), s = document.getElementById('snap-slider');
  const label = document.getElementById('snap-step');
  const draw = (k) => {
    const sn = snaps[k], [x0, x1, y0, y1] = sn.bounds, n = sn.field.length, W = c.width, H = c.height;
    const px = (x) => (x - x0) / (x1 - x0) * W, py = (y) => (1 - (y - y0) / (y1 - y0)) * H;
    let lim = 1e-6; for (const row of sn.field) for (const v of row) lim = Math.max(lim, Math.abs(v - sn.centre));
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
      const t = Math.max(-1, Math.min(1, (sn.field[i][j] - sn.centre) / lim));
      const g = t > 0 ? [255 - 90 * t, 255 - 30 * t, 255 - 90 * t] : [255 + 70 * t, 255 + 100 * t, 255 + 40 * t];
      ctx.fillStyle = `rgb(${g.map(Math.round).join(',')})`;
      ctx.fillRect(j * W / n, (n - 1 - i) * H / n, W / n + 1, H / n + 1);
    }
    const dot = (p, colour) => { ctx.fillStyle = colour; ctx.beginPath(); ctx.arc(px(p[0]), py(p[1]), 2.2, 0, 2 * Math.PI); ctx.fill(); };
    sn.fake.forEach((p) => dot(p, '#7b3294'));
    sn.real.forEach((p) => dot(p, '#1a9850')); // on top: the targets stay visible under a crowd of generated points
    let glim = 1e-12; for (const g of sn.grad) glim = Math.max(glim, Math.hypot(g[0], g[1]));
    ctx.strokeStyle = 'rgba(0,0,0,0.6)'; ctx.lineWidth = 1;
    sn.grad.forEach((g, i) => {
      const p = sn.fake[i], len = 22 * Math.hypot(g[0], g[1]) / glim, a = Math.atan2(-g[1], g[0]);
      const ax = px(p[0]), ay = py(p[1]), bx = ax + len * Math.cos(a), by = ay + len * Math.sin(a);
      ctx.beginPath(); ctx.moveTo(ax, ay); ctx.lineTo(bx, by);
      ctx.lineTo(bx - 4 * Math.cos(a - 0.5), by - 4 * Math.sin(a - 0.5)); ctx.moveTo(bx, by);
      ctx.lineTo(bx - 4 * Math.cos(a + 0.5), by - 4 * Math.sin(a + 0.5)); ctx.stroke();
    });
    label.textContent = 'step ' + sn.step;
    c.dataset.step = sn.step;
  };
  s.addEventListener('input', () => draw(+s.value));
  draw(+s.value);
}

function initLive() {
  // served by `gankit serve`: reload when the run's files change, keeping the scroll position
  const y = sessionStorage.getItem('gankit-scroll'); if (y) window.scrollTo(0, +y);
  let stamp = null;
  const poll = async () => {
    try {
      const r = await fetch('live.json', { cache: 'no-store' });
      const s = (await r.json()).stamp;
      if (stamp !== null && s !== stamp) { sessionStorage.setItem('gankit-scroll', window.scrollY); location.reload(); return; }
      stamp = s;
    } catch (e) { document.getElementById('live').textContent = 'live view: the server is gone'; return; }
    setTimeout(poll, 2000);
  };
  poll();
}

if (document.getElementById('grid-data')) initGrid();
if (document.getElementById('snapshot-data')) initField();
if (document.body.dataset.live === '1') initLive();
