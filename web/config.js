// Where the page finds the library API. Edit this file when deploying the page as static files.
//   apiBaseUrl: "" means the same origin as the page (what `make dev` serves);
//               for a deployed API, its base URL, e.g. "https://<api-id>.execute-api.us-east-1.amazonaws.com".
//   localSignIn: show the user-name sign-in, which asks the local stack's POST /_dev/token for a token.
//               A deployed API has no such route: set it to false there and paste a token from your IdP.
window.VIDEO_LIBRARY_CONFIG = {
  apiBaseUrl: "",
  localSignIn: true,
};
