/**
 * The bearer-token check every request passes first: ARM's 401s for a missing or wrong token.
 */
import { ArmError } from "./errors.js";
import { FAKE_MI_TOKEN } from "./types.js";

const CHALLENGE =
  'Bearer authorization_uri="https://login.microsoftonline.com/common", error="invalid_token"';

/** Throws ARM's 401 unless `authorization` is the managed identity's bearer token. */
export function checkAuthorization(authorization: string | undefined): void {
  if (authorization === undefined) {
    throw new ArmError(
      401,
      "AuthenticationFailed",
      "Authentication failed. The 'Authorization' header is missing.",
      {
        "WWW-Authenticate": `${CHALLENGE}, error_description="The authentication failed because of missing 'Authorization' header."`,
      },
    );
  }
  if (authorization !== `Bearer ${FAKE_MI_TOKEN}`) {
    throw new ArmError(401, "AuthenticationFailed", "Authentication failed. The access token is invalid.", {
      "WWW-Authenticate": `${CHALLENGE}, error_description="The access token is invalid."`,
    });
  }
}
