/**
 * MAC addresses in the one form the plugin compares and stores: lower-case, colon-separated.
 */

/**
 * Normalises a MAC address from IMDS (`000D3AF806EC`), ARM (`00-0D-3A-F8-06-EC`) or Linux form.
 * @example normalizeMac("000D3AF806EC") // "00:0d:3a:f8:06:ec"
 */
export function normalizeMac(text: string): string | undefined {
  if (typeof text !== "string") return undefined;
  const hex = text.replace(/[-:.]/g, "").toLowerCase();
  if (!/^[0-9a-f]{12}$/.test(hex)) return undefined;
  return hex.match(/../g)!.join(":");
}
