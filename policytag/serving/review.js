// Review mode (js_on_load of the review gr.HTML): one clause at a time, driven by the keyboard.
// Keys: 1-6 toggle themes, letters toggle measure types (shown on each chip), Enter accepts and
// moves on, <- -> move, N (or Delete) marks "not a clause", Esc resets the clause to the model's labels.
// Every decision is sent at once to the server function `decide` (in order, one after the other)
// and lands in the corrections store; the card only moves on when the decision was sent.
const S = { data: null, pos: 0, drafts: {}, queue: Promise.resolve(), pending: 0, msg: '', batch: null };
const T = (zh, en) => (S.data && S.data.lang === 'en' ? en : zh);
const esc = (s) => String(s == null ? '' : s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));

function load() {
  const node = element.querySelector('.pt-review-data');
  if (!node) { S.data = null; return; }
  const data = JSON.parse(node.dataset.json || '{}');
  if (S.data && data.batch === S.batch) return;  // same review: keep the position
  S.data = data; S.batch = data.batch; S.drafts = {}; S.msg = '';
  const first = data.items.findIndex((it) => !it.row.status);
  S.pos = first < 0 ? 0 : first;
}
function item() { return S.data && S.data.items[S.pos]; }
function draft(i) {
  const it = S.data.items[i];
  return S.drafts[i] || { themes: [...(it.row.themes || [])], measures: [...(it.row.measures || [])] };
}
function changed(i) {
  const it = S.data.items[i], d = S.drafts[i];
  if (!d) return false;
  const eq = (a, b) => a.length === b.length && a.every((x) => b.includes(x));
  return !(eq(d.themes, it.row.themes || []) && eq(d.measures, it.row.measures || []));
}
function annotator() {
  const box = document.querySelector('#pt-rv-annotator input, #pt-rv-annotator textarea');
  return box ? box.value.trim() : '';
}
function reviewed() { return S.data.items.filter((it) => it.row.status).length; }

function render() {
  load();
  const card = element.querySelector('.pt-review-card');
  if (!card) return;
  if (!S.data || !S.data.items || !S.data.items.length) {
    card.innerHTML = `<div class="pt-empty">${T('点击“开始复核”载入条款。', 'Click “Start review” to load the clauses.')}</div>`;
    return;
  }
  const it = item(), d = draft(S.pos), n = S.data.items.length;
  const status = { corrected: T('已修正', 'corrected'), accepted: T('已确认', 'accepted'), junk: T('非条款', 'not a clause') }[it.row.status] || T('未复核', 'not reviewed');
  const chip = (lab) => {
    const on = (lab.dim === 'themes' ? d.themes : d.measures).includes(lab.id);
    const style = on ? `background:${lab.color};border-color:${lab.color};color:#fff` : `border-color:${lab.color}`;
    return `<span class="pt-rv-chip${on ? ' on' : ''}" data-label="${lab.id}" style="${style}"><kbd>${esc(lab.key.toUpperCase())}</kbd>${esc(lab.name)}</span>`;
  };
  const themes = S.data.labels.filter((l) => l.dim === 'themes').map(chip).join('');
  const fams = [...new Set(S.data.labels.filter((l) => l.dim === 'measures').map((l) => l.family))];
  const measures = fams.map((f) => `<div class="pt-rv-row"><span class="pt-rv-fam">${esc(f)}</span>${S.data.labels.filter((l) => l.dim === 'measures' && l.family === f).map(chip).join('')}</div>`).join('');
  card.innerHTML = `
    <div class="pt-rv-top"><span class="pt-rv-counter">${T('已复核', 'reviewed')} <b>${reviewed()}</b> / ${n}</span>
      <span class="pt-rv-pos">${T('第', '#')} ${S.pos + 1} ${T('条', '')} · ${esc(it.row.clause_id)}</span>
      <span class="pt-rv-status pt-rv-${it.row.status || 'none'}">${status}</span>
      ${S.pending ? `<span class="pt-muted">${T('保存中…', 'saving…')}</span>` : ''}</div>
    <div class="pt-rv-context">${esc(it.row.context || '')}</div>
    <div class="pt-rv-prev">${esc(it.prev)}</div>
    <div class="pt-rv-clause${it.row.status === 'junk' ? ' pt-junk' : ''}">${esc(it.row.text)}</div>
    <div class="pt-rv-next">${esc(it.next)}</div>
    <div class="pt-rv-scores">${T('模型', 'model')} (${T('置信度', 'confidence')} ${esc(it.conf || '—')}): ${esc(it.scores || T('无标签', 'no labels'))}</div>
    <div class="pt-rv-row"><span class="pt-rv-fam">${T('主题', 'Themes')}</span>${themes}</div>${measures}
    <div class="pt-rv-keys">${T('Enter 确认并下一条 · ← → 移动 · N 非条款 · Esc 还原', 'Enter accept & next · ← → move · N not a clause · Esc reset')}</div>
    <div class="pt-rv-msg">${esc(S.msg)}</div>`;
}

function send(i, action) {
  const name = annotator();
  if (!name) { S.msg = T('请先在上方填写标注人，再复核。', 'Enter your name as annotator first.'); render(); return false; }
  const it = S.data.items[i], d = draft(i);
  const payload = { row: it.row, action, themes: d.themes, measures: d.measures, annotator: name };
  const before = it.row.status;
  it.row.status = action === 'junk' ? 'junk' : (changed(i) ? 'corrected' : 'accepted');
  S.pending += 1;
  S.queue = S.queue.then(() => server.decide(payload)).then((res) => {
    S.pending -= 1;
    if (!res || !res.ok) { it.row.status = before; S.msg = (res && res.error) || T('保存失败', 'not saved'); }
    else {
      it.row.status = res.status; it.row.themes = res.themes; it.row.measures = res.measures; delete S.drafts[i];
      S.msg = ''; element.dataset.saved = String(Number(element.dataset.saved || 0) + 1);
    }
    render();
  }, (err) => { S.pending -= 1; it.row.status = before; S.msg = T('保存失败：', 'not saved: ') + err; render(); });
  return true;
}
function move(k) { S.pos = Math.max(0, Math.min(S.data.items.length - 1, S.pos + k)); S.msg = ''; render(); }
function toggle(lid) {
  const lab = S.data.labels.find((l) => l.id === lid), d = draft(S.pos);
  const list = lab.dim === 'themes' ? d.themes : d.measures;
  const at = list.indexOf(lid);
  if (at >= 0) list.splice(at, 1); else list.push(lid);
  S.drafts[S.pos] = d; render();
}

document.addEventListener('keydown', (e) => {
  if (!element.offsetParent || e.ctrlKey || e.metaKey || e.altKey) return;  // review tab hidden, or a shortcut
  const tag = (e.target && e.target.tagName) || '';
  if (['INPUT', 'TEXTAREA', 'SELECT'].includes(tag) || (e.target && e.target.isContentEditable)) return;
  load();
  if (!S.data || !S.data.items.length) return;
  const k = e.key.length === 1 ? e.key.toLowerCase() : e.key;
  const lab = S.data.labels.find((l) => l.key && l.key === k);
  if (lab) { toggle(lab.id); }
  else if (k === 'Enter') { if (send(S.pos, changed(S.pos) ? 'save' : 'accept')) move(1); }
  else if (k === 'n' || k === 'Delete') { if (send(S.pos, 'junk')) move(1); }
  else if (k === 'ArrowRight' || k === 'ArrowLeft') {
    if (changed(S.pos) && !send(S.pos, 'save')) return;
    move(k === 'ArrowRight' ? 1 : -1);
  } else if (k === 'Escape') { delete S.drafts[S.pos]; render(); }
  else return;
  e.preventDefault();
});
element.addEventListener('click', (e) => {
  const c = e.target.closest('[data-label]');
  if (c) toggle(c.dataset.label);
});
watch('value', () => { S.batch = null; render(); });
render();
