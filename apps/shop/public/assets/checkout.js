// Checkout: shipping → payment → review → place order; a guest gives an email address first. The server
// keeps the step (a user's in the account, so another device resumes at the same place; a guest's in the
// session), so the page always renders what GET /api/checkout says.
import { api, ApiError, askPassword, describeError, el, formatPrice, loadFailed, loadSession, onChange, state, toast } from './app.js';

const LABELS = { contact: 'Contact', shipping: 'Shipping', payment: 'Payment', review: 'Review' };
const FORMS = { contact: contactForm, shipping: shippingForm, payment: paymentForm };
let flow = null;
let editing = null;
let placed = null;
// Where a guest's receipt goes, kept for the confirmation: the run (and its data) ends with the order.
let receiptTo = null;
/** Counts the page's posts: a wait for another device's order (below) stops once the user does anything else. */
let posts = 0;
/** Set while Place order waits for its answer: the review is not drawn again under it (its buttons disabled). */
let placing = false;

function field(name, label, value, attrs = {}) {
  return el('label', {}, label, el('input', { id: name, name, value: value ?? '', required: true, ...attrs }));
}

function renderSteps() {
  const current = placed ? flow.steps.length : flow.steps.indexOf(editing ?? flow.step);
  document.getElementById('steps').replaceChildren(...flow.steps.map((s, i) => el('li', {
    class: i < current ? 'done' : undefined, 'aria-current': i === current ? 'step' : undefined,
  }, LABELS[s] ?? s, i < current ? el('span', { class: 'visually-hidden' }, ' (done)') : null)));
}

/** Set while a step (or Back) is on its way: a second click then would be a second step (Back twice). */
let sending = false;

async function post(path, body) {
  if (sending) return;
  sending = true;
  const mine = ++posts;
  try {
    // Naming the run shown: a step for a run that ended meanwhile (its order placed in another tab) is
    // refused, not taken into the next run. Naming whose checkout it is: a checkout not begun has no run
    // to name, and its first step, after a login or logout in another tab, would go into another's.
    flow = await api('POST', path, { ...body, account: shownFor, ...(flow.runId ? { runId: flow.runId } : {}) });
    editing = null;
    render();
  } catch (err) {
    if (err.code === 'FLOW_COMPLETING') return completingElsewhere(err, mine);
    if (err.code === 'ORDER_PLACED') return placedElsewhere(err);
    // Out of order, or a step this checkout does not have (a login in another tab swapped the guest's for
    // the account's, or the session ended and took a guest's checkout with it): show what the server has
    // now, and then why, or the message would go with the form it was in.
    if (err.code === 'FLOW_STEP_OUT_OF_ORDER' || err.code === 'FLOW_STEP_UNKNOWN' || err.code === 'CHECKOUT_ACCOUNT_CHANGED') return moved(err);
    showError(err);
  } finally {
    sending = false;
  }
}

/** Who the checkout shown is for: the username, or null for a guest's (see changedHands). */
let shownFor = null;
const whoIs = (view) => (view?.authenticated ? view.user.username : null);
/** Set while the page loads the checkout again and says why, so that it does so once. */
let reloading = false;

/**
 * In words, why the checkout now shown (`flow`, for `shownFor`) is not the one shown before (`before`,
 * for `was`); null: it is the same.
 */
function whyChanged(before, was) {
  if (was !== null && shownFor === null) return 'You are no longer signed in, so this is a guest checkout. Log in again to go on with the checkout saved to your account.';
  if (was === null && shownFor !== null) return 'You signed in (in another tab?), so this is your account\'s checkout now; what you typed as a guest was not kept.';
  if (was !== shownFor) return `You are signed in as ${shownFor} now (in another tab?), so this is that account's checkout; what you typed here was not saved, and the checkout of ${was} stays with that account.`;
  if (before.runId !== flow.runId) return 'This checkout started over (its order was placed or it was restarted in another tab or on another device, or your session ended), so that step was not saved.';
  return null;
}

/** Loads the session and the checkout again, as they are now (the page waits, `reloading`). */
async function reloadAll() {
  reloading = true;
  try {
    await loadSession({ create: true }).catch(() => null);
    await refresh();
  } finally {
    reloading = false;
  }
}

/**
 * The checkout is no longer the one this page shows: it shows the one there is now, and says in words
 * what happened, from what changed (the server's message names steps and runs).
 */
async function moved(err) {
  const before = flow;
  const was = shownFor;
  await reloadAll();
  const why = whyChanged(before, was) ?? 'This checkout moved to another step in another tab or on another device; here it is as it is now.';
  showError(new ApiError(err.status, err.code, why));
}

/**
 * Signed out (or in) elsewhere while the page shows a review: that review was of the account's cart and
 * checkout, which the page no longer has (it would say the cart is empty, over the account's address).
 * It shows the checkout there is now, and why.
 */
async function changedHands() {
  const before = flow;
  const was = shownFor;
  reloading = true;
  try {
    await refresh();
  } catch (err) {
    toast(describeError(err));
    return;
  } finally {
    reloading = false;
  }
  const why = whyChanged(before, was);
  if (why) showError(new ApiError(409, 'FLOW_STEP_UNKNOWN', why));
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
/** How long the page waits between asks for an order being placed elsewhere: about 15 s in all. */
const COMPLETING_WAITS = [500, 1000, 1000, 2000, 2000, 3000, 3000, 3000];

/**
 * FLOW_COMPLETING: another tab or device is placing this checkout's order, so no step can change until
 * that ends. The page says so in words, keeps what was typed, and asks until the order is placed (a new
 * checkout, the cart without what was ordered), which it then shows; an order that fails there gives
 * the checkout back unchanged, and the user can send the form again.
 */
async function completingElsewhere(err, mine) {
  const runId = flow.runId;
  const say = (message) => {
    if (posts === mine) showError(new ApiError(err.status, err.code, message));
  };
  say('Your order is being placed in another tab or on another device, so this change was not saved. This page updates once it is placed.');
  for (const wait of COMPLETING_WAITS) {
    await sleep(wait);
    if (posts !== mine) return;
    let now;
    try {
      now = await api('GET', '/api/checkout');
    } catch {
      continue;
    }
    if (posts !== mine) return;
    if (now.runId !== runId) {
      await loadSession({ create: true }).catch(() => null);
      if (posts !== mine) return;
      flow = now;
      editing = null;
      render();
      say('Your order was placed in another tab or on another device: it is under Orders. This is a new checkout.');
      return;
    }
  }
  say('Your order is still being placed in another tab or on another device, or placing it failed there. Try again in a moment.');
}

/**
 * ORDER_PLACED: the run this page showed placed its order in another tab or on another device, before
 * this step arrived. The page shows the new checkout and the emptied cart, and says where the order is.
 */
async function placedElsewhere(err) {
  await reloadAll();
  showError(new ApiError(err.status, err.code, 'Your order was placed in another tab or on another device: it is under Orders. This is a new checkout.'));
}

function showError(err) {
  const box = document.getElementById('step-error');
  if (box) box.textContent = describeError(err);
  else toast(describeError(err));
}

function formOf(step, fields, submitLabel, withBack) {
  const form = el('form', {
    class: 'form panel', novalidate: true, 'data-step': step,
    onsubmit: (e) => {
      e.preventDefault();
      const body = Object.fromEntries(new FormData(e.currentTarget).entries());
      post(`/api/checkout/${step}`, body);
    },
  },
  el('h2', { tabindex: '-1', id: 'step-title' }, LABELS[step]),
  ...fields,
  el('p', { id: 'step-error', class: 'form-error', role: 'alert' }),
  el('div', { class: 'actions' },
    withBack ? el('button', { type: 'button', 'data-testid': 'back', onclick: () => (editing ? (editing = null, render()) : post('/api/checkout/back')) }, 'Back') : null,
    el('button', { type: 'submit', class: 'primary' }, submitLabel)));
  return form;
}

function contactForm() {
  const d = flow.data.contact ?? {};
  return formOf('contact', [
    el('p', { class: 'muted' }, 'Checking out as a guest. Have an account? ',
      el('a', { href: '/login?next=/checkout', 'data-testid': 'checkout-login' }, 'Log in'), ' instead: your cart comes along, what you type here does not.'),
    field('email', 'Email', d.email, { type: 'email', autocomplete: 'email', maxlength: '254' }),
    el('p', { class: 'muted' }, 'For the receipt only.'),
  ], 'Continue to shipping', editing === 'contact');
}

function shippingForm() {
  const d = flow.data.shipping ?? {};
  return formOf('shipping', [
    field('name', 'Full name', d.name, { autocomplete: 'name', maxlength: '100' }),
    field('address', 'Address', d.address, { autocomplete: 'street-address', maxlength: '200' }),
    el('div', { class: 'row' },
      field('city', 'City', d.city, { autocomplete: 'address-level2', maxlength: '100' }),
      field('postalCode', 'Postal code', d.postalCode, { autocomplete: 'postal-code', maxlength: '12' })),
    field('country', 'Country', d.country, { autocomplete: 'country-name', maxlength: '56' }),
  ], 'Continue to payment', editing === 'shipping' || flow.steps[0] !== 'shipping');
}

function paymentForm() {
  const saved = flow.data.payment;
  return formOf('payment', [
    saved ? el('p', { class: 'muted' }, `Previously entered: ${saved.brand} ending in ${saved.last4}. Enter the card again to continue.`) : null,
    field('cardNumber', 'Card number', '', { autocomplete: 'cc-number', inputmode: 'numeric', maxlength: '23', placeholder: '4242 4242 4242 4242' }),
    field('expiry', 'Expiry (MM/YY)', '', { autocomplete: 'cc-exp', maxlength: '7', placeholder: 'MM/YY' }),
    el('p', { class: 'muted' }, 'Demo shop: no payment is taken. Only the last four digits are kept.'),
  ], 'Review order', true);
}

/**
 * Places the order. A user who signed in a while ago (kept signed in) is asked for the password first
 * (REAUTH_REQUIRED); null when they cancel.
 */
async function confirm(body) {
  try {
    return await api('POST', '/api/checkout/confirm', body);
  } catch (err) {
    if (!(err instanceof ApiError && err.code === 'REAUTH_REQUIRED')) throw err;
    const password = await askPassword('You signed in a while ago. Enter your password to place the order.');
    if (password === null) return null;
    return api('POST', '/api/checkout/confirm', { ...body, password });
  }
}

function review() {
  const s = flow.data.shipping;
  const p = flow.data.payment;
  const c = flow.data.contact;
  const cart = state.session?.cart ?? { items: [], count: 0, total: 0 };
  const place = el('button', {
    type: 'button', class: 'primary', 'data-testid': 'place-order', disabled: cart.items.length === 0,
    onclick: async () => {
      // Back and the Change buttons too: sent while the order is being placed, each would only be refused.
      const busy = (on) => {
        for (const b of panel.querySelectorAll('button')) b.disabled = on;
      };
      busy(true);
      placing = true;
      try {
        // Naming the run makes a retry (a lost reply, a second click) answer with the same order; naming
        // the items shown here makes the server refuse (CART_CHANGED) a cart changed since in another tab.
        receiptTo = c?.email ?? null;
        placed = await confirm({ runId: flow.runId, account: shownFor, items: cart.items.map((i) => ({ productId: i.productId, quantity: i.quantity })) });
        if (placed === null) {
          busy(false);
          return;
        }
        await loadSession({ create: true });
        flow = await api('GET', '/api/checkout');
        render();
      } catch (err) {
        busy(false);
        // The run is gone (the session ended, or another tab finished or restarted it; a guest's confirm
        // that a tab served by another worker completed first fails its commit with FLOW_RUN_NOT_CURRENT):
        // placing it again would only repeat this, so show the checkout as it is now.
        if (err.code === 'FLOW_STEP_OUT_OF_ORDER' || err.code === 'FLOW_RUN_NOT_CURRENT' || err.code === 'CHECKOUT_ACCOUNT_CHANGED') return moved(err);
        if (err.code === 'CART_CHANGED') {
          // The cart is no longer the one shown: show the one there is now, to review before placing it.
          await loadSession({ create: true });
          await refresh();
          showError(new ApiError(err.status, err.code, 'Your cart changed since this review (in another tab or device?), so no order was placed. Check the order below and place it again.'));
          return;
        }
        showError(err);
      } finally {
        placing = false;
      }
    },
  }, `Place order · ${formatPrice(cart.total)}`);
  const panel = el('div', { class: 'panel stack', 'data-step': 'review' },
    el('h2', { tabindex: '-1', id: 'step-title' }, 'Review your order'),
    cart.items.length === 0 ? el('p', {}, 'Your cart is empty. ', el('a', { href: '/' }, 'Add something first.')) : el('table', {},
      el('thead', {}, el('tr', {}, el('th', {}, 'Item'), el('th', {}, 'Qty'), el('th', {}, 'Price'))),
      el('tbody', {}, ...cart.items.map((i) => el('tr', {}, el('td', {}, i.name), el('td', {}, String(i.quantity)), el('td', {}, formatPrice(i.price * i.quantity)))))),
    el('div', { class: 'review' },
      c ? el('section', {}, el('h3', {}, 'Receipt to'), el('p', { 'data-testid': 'review-contact' }, c.email),
        el('button', { type: 'button', class: 'link', onclick: () => { editing = 'contact'; render(); } }, 'Change email')) : null,
      el('section', {}, el('h3', {}, 'Ship to'), el('p', { 'data-testid': 'review-shipping' }, s.name, el('br'), s.address, el('br'), `${s.postalCode} ${s.city}`, el('br'), s.country),
        el('button', { type: 'button', class: 'link', onclick: () => { editing = 'shipping'; render(); } }, 'Change address')),
      el('section', {}, el('h3', {}, 'Pay with'), el('p', { 'data-testid': 'review-payment' }, `${p.brand} ending in ${p.last4}`, el('br'), `Expires ${p.expiry}`))),
    el('p', { id: 'step-error', class: 'form-error', role: 'alert' }),
    el('div', { class: 'actions' }, el('button', { type: 'button', 'data-testid': 'back', onclick: () => post('/api/checkout/back') }, 'Back'), place));
  return panel;
}

/**
 * Over a checkout not yet begun, the order the last one placed, lately (GET /api/checkout's `lastOrder`):
 * a Place order whose answer was lost (the network), or that another tab or device sent, went through,
 * and the page loaded again shows the next checkout. Null when there is none to tell of.
 */
function lastOrderNote() {
  const last = flow.runId === null ? flow.lastOrder : null;
  if (!last) return null;
  return el('p', { class: 'panel', role: 'status', 'data-testid': 'last-order' },
    'Your order ', el('strong', {}, last.orderId), ` (${formatPrice(last.total)}) was placed at ${new Date(last.placedAt).toLocaleTimeString()}. It is under `,
    el('a', { href: '/orders' }, 'Orders'), '.');
}

/** `focus`: false when the page shows the same step again (a currency switch), and focus stays where it is. */
function render(focus = true) {
  renderSteps();
  const host = document.getElementById('checkout');
  if (placed) {
    host.replaceChildren(el('div', { class: 'panel stack', 'data-testid': 'order-placed' },
      el('h2', { tabindex: '-1', id: 'step-title' }, 'Thank you! Your order is placed.'),
      el('p', {}, 'Order ', el('strong', { 'data-testid': 'order-id' }, placed.orderId), ' · ', el('span', { 'data-testid': 'order-total' }, formatPrice(placed.total))),
      placed.checkoutChanged ? el('p', { 'data-testid': 'order-changed' }, 'Your checkout was changed in another tab or on another device while this order was being placed: the order went out as you reviewed it here, and the change is kept in your checkout.') : null,
      receiptTo ? el('p', { 'data-testid': 'order-receipt' }, `Receipt to ${receiptTo} (this demo shop sends no email). Note the order number: without an account, your orders are listed in this browser only while this session lasts.`) : null,
      el('div', { class: 'actions' },
        el('a', { class: 'button primary', href: '/orders' }, receiptTo ? 'Your orders' : 'See your orders'),
        el('a', { href: '/' }, 'Keep shopping'))));
  } else {
    const step = editing ?? flow.step;
    const note = lastOrderNote();
    host.replaceChildren(...(note ? [note] : []), (FORMS[step] ?? review)());
  }
  if (focus) document.getElementById('step-title')?.focus();
}

async function refresh() {
  flow = await api('GET', '/api/checkout');
  shownFor = whoIs(state.session);
  editing = null;
  render();
}

async function main() {
  // A session for the steps to come (their CSRF token); a visitor without an account checks out as a guest.
  await loadSession({ create: true });
  flow = await api('GET', '/api/checkout');
  shownFor = whoIs(state.session);
  render();
  // A currency switch prices the review and the placed order again; a form being filled in is left as it
  // is (sent, it is told what changed).
  onChange((view) => {
    if (placing) return;
    const form = !placed && FORMS[editing ?? flow.step];
    if (!placed && !form && !reloading && whoIs(view) !== shownFor) void changedHands();
    else if (!form) render(false);
  });
}

main().catch((err) => loadFailed(document.getElementById('checkout'), err));
