"use strict";
// Log in with the API token: POSTed once as JSON (never in a URL), answered with an
// HttpOnly session cookie; the field is cleared whatever the answer.
(function () {
  const form = document.getElementById("login-form");
  const field = document.getElementById("token");
  const error = document.getElementById("login-error");
  const button = document.getElementById("login-button");
  // Relative to the page (/dashboard, or /<stage>/dashboard behind API Gateway).
  const loginUrl = "dashboard/login";

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    button.disabled = true;
    const token = field.value;
    field.value = "";
    try {
      const response = await fetch(loginUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ token }),
      });
      if (response.ok) {
        window.location.reload();
        return;
      }
      error.textContent = response.status === 401 ? "Wrong token." : `Login failed (${response.status}).`;
    } catch (e) {
      error.textContent = "The server did not answer.";
    }
    error.hidden = false;
    button.disabled = false;
    field.focus();
  });
})();
