// The interactive reference of the gateway's live route table (/openapi.json).
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  docExpansion: "list",
  tryItOutEnabled: false,
  displayRequestDuration: true,
  validatorUrl: null,
});
