"""HTTP pieces every captionqc FastAPI service shares. A service's ``create_app`` does:

    app = FastAPI(..., lifespan=lifespan)
    install_error_handlers(app)                     # errors.py: one ErrorBody shape for every error
    install_middleware(app, max_body_bytes=...)     # middleware.py: X-Request-ID, server span, access log, 413
    # in the lifespan, once the engine is open (auth.py; settings is a ServiceSettings + AuthSettings subclass):
    install_auth(app, settings, tenants=TenantDirectory(engine, ttl_s=settings.tenant_cache_s))
    app.include_router(health_router({"database": db_ready, ...}))   # health.py: /healthz, /readyz
    app.include_router(api_router)

and its routes take ``principal: Annotated[Principal, Depends(require_scopes("jobs:read"))]``, raise the typed
errors (``NotFound``, ``Conflict``, ``InvalidInput`` …) and document them with ``responses=error_responses(401, …)``.
The settings class declares the auth fields by inheritance: ``class S(ServiceSettings, AuthSettings)``, read with
the service's own env prefix (``CAPTIONQC_<SVC>_JWT_SECRET``, ``…_JWT_MODE=jwks``, ``…_JWKS_URL`` …).
"""
