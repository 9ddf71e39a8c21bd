/**
 * The short form of a Docker id, as `docker network ls` and `docker ps` show it: used in messages and
 * in names made from ids, so that an operator can match them with what Docker shows.
 */

/**
 * The first 12 characters of a Docker id.
 * @example shortId("adf4fa8e17725c3d...") // "adf4fa8e1772"
 */
export function shortId(id: string): string {
  return id.slice(0, 12);
}
