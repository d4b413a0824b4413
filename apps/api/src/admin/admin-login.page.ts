/**
 * The dashboard's login form. A browser cannot send `Authorization: Bearer` when it navigates,
 * so the admin key is posted once from this form and exchanged for a session cookie. The page
 * never shows the key it was given, only whether it was wrong.
 */
export function loginPage(options: { next: string; failed: boolean }): string {
  const notice = options.failed ? '<p class="error" role="alert">Wrong admin key.</p>' : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Inference gateway: admin login</title>
<style>
  body { font: 16px system-ui, sans-serif; background: #f4f5f7; margin: 0; display: grid; place-items: center; min-height: 100vh; }
  form { background: #fff; padding: 2rem; border-radius: 8px; box-shadow: 0 1px 4px rgba(0,0,0,.15); width: 20rem; }
  h1 { font-size: 1.2rem; margin: 0 0 1rem; }
  label, input, button { display: block; width: 100%; box-sizing: border-box; }
  input { margin: .4rem 0 1rem; padding: .5rem; font: inherit; }
  button { padding: .6rem; font: inherit; cursor: pointer; }
  .error { color: #b00020; margin: 0 0 1rem; }
</style>
</head>
<body>
<form method="post" action="/admin/login">
  <h1>Queue dashboard</h1>
  ${notice}
  <label for="key">Admin key (ADMIN_API_KEYS)</label>
  <input id="key" name="key" type="password" autocomplete="current-password" required autofocus>
  <input type="hidden" name="next" value="${escapeHtml(options.next)}">
  <button type="submit">Log in</button>
</form>
</body>
</html>
`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
