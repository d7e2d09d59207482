/**
 * The Rényi orders at which the accountant tracks privacy loss.
 *
 * Same list as Google's dp_accounting `DEFAULT_RDP_ORDERS` (rdp/rdp_privacy_accountant.py):
 * 1.1 to 10.9 by 0.1, the integers 11 to 63, then 128, 256, 512 and 1024 — 156 orders. Each
 * fractional order is computed as `1 + x / 10`, exactly as there, so both lists hold the same
 * doubles (2.0, 3.0, … 10.0 are then integers and take the exact integer-order path).
 */
function defaultOrders(): readonly number[] {
  const orders: number[] = []
  for (let x = 1; x < 100; x++) orders.push(1 + x / 10)
  for (let a = 11; a < 64; a++) orders.push(a)
  orders.push(128, 256, 512, 1024)
  return Object.freeze(orders)
}

/** dp_accounting's default Rényi orders (156 of them). */
export const DEFAULT_RDP_ORDERS: readonly number[] = defaultOrders()

/** Checks a caller's list of orders: finite numbers > 1, at least one. */
export function checkOrders(orders: readonly number[], name = 'orders'): void {
  if (!Array.isArray(orders)) throw new TypeError(`${name} must be an array of numbers`)
  if (orders.length === 0) throw new RangeError(`${name} must hold at least one order`)
  for (const a of orders) {
    if (typeof a !== 'number' || !Number.isFinite(a) || a <= 1) {
      throw new RangeError(`${name} must hold finite numbers > 1, got ${String(a)}`)
    }
  }
}
