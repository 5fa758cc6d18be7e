"""Account (team mode only): sign in, API tokens (shown once, revocable), experiments."""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from frontend.client import ApiError
from frontend.context import Studio, error_text
from frontend.views import parse_ids

TAB = "account"


def build(studio: Studio) -> dict[str, Any]:
    ids = studio.ids
    who = gr.Markdown(
        "Not signed in: the studio uses the server's service token.", elem_id=ids(TAB, "who")
    )
    with gr.Row():
        email = gr.Textbox(label="Email", elem_id=ids(TAB, "email"))
        password = gr.Textbox(label="Password", type="password", elem_id=ids(TAB, "password"))
        login = gr.Button("Sign in", variant="primary", elem_id=ids(TAB, "login"))
    with gr.Row():
        pasted = gr.Textbox(
            label="...or paste an API token", type="password", elem_id=ids(TAB, "token")
        )
        use_token = gr.Button("Use token", elem_id=ids(TAB, "use-token"))
        logout = gr.Button("Sign out", elem_id=ids(TAB, "logout"))
    gr.Markdown("### API tokens")
    with gr.Row():
        token_name = gr.Textbox(label="New token name", elem_id=ids(TAB, "token-name"))
        create = gr.Button("Create token", elem_id=ids(TAB, "create-token"))
        revoke_id = gr.Textbox(label="Token id to revoke", elem_id=ids(TAB, "revoke-id"))
        revoke = gr.Button("Revoke", variant="stop", elem_id=ids(TAB, "revoke"))
    created = gr.Markdown(elem_id=ids(TAB, "created"))
    tokens = gr.Dataframe(
        pd.DataFrame(columns=["id", "name", "prefix"]),
        interactive=False,
        elem_id=ids(TAB, "tokens"),
    )
    gr.Markdown("### Experiments")
    with gr.Row():
        exp_name = gr.Textbox(label="New experiment", elem_id=ids(TAB, "experiment-name"))
        exp_create = gr.Button("Create experiment", elem_id=ids(TAB, "create-experiment"))
    experiments = gr.Dataframe(
        pd.DataFrame(columns=["id", "name"]), interactive=False, elem_id=ids(TAB, "experiments")
    )

    def describe(token: str | None) -> tuple[str, Any, Any]:
        client = studio.api(token)
        try:
            me = client.me()
            text = f"Signed in as **{me.get('email', '?')}** ({me.get('role', '?')})."
        except ApiError as exc:
            text = error_text(exc, "identify the user")
        try:
            token_rows = pd.DataFrame(
                [
                    [t.id, t.name, t.prefix, t.created_at, t.revoked_at]
                    for t in client.list_tokens()
                ],
                columns=["id", "name", "prefix", "created", "revoked"],
            )
        except ApiError:
            token_rows = gr.skip()
        try:
            exp_rows = pd.DataFrame(
                [[e.id, e.name, e.description] for e in client.list_experiments()],
                columns=["id", "name", "description"],
            )
        except ApiError:
            exp_rows = gr.skip()
        return text, token_rows, exp_rows

    def sign_in(email_: str, password_: str) -> tuple[Any, str]:
        try:
            token = studio.client.login(email_, password_)
        except ApiError as exc:
            return gr.skip(), error_text(exc, "sign in")
        return token, "Signed in."

    def with_token(pasted_: str) -> tuple[Any, str]:
        token = pasted_.strip()
        try:
            studio.api(token).me()
        except ApiError as exc:
            return gr.skip(), error_text(exc, "use this token")
        return token, "Token accepted."

    def new_token(token: str | None, name: str) -> str:
        try:
            made = studio.api(token).create_token(name or "studio")
        except ApiError as exc:
            return error_text(exc, "create a token")
        return f"New token (copy it now, it is shown once): `{made.token}`"

    def drop_token(token: str | None, which: str) -> str:
        chosen = parse_ids(which)
        if not chosen:
            return "Give the id of the token to revoke."
        try:
            studio.api(token).revoke_token(chosen[0])
        except ApiError as exc:
            return error_text(exc, "revoke the token")
        return f"Token {chosen[0]} revoked."

    def new_experiment(token: str | None, name: str) -> str:
        try:
            made = studio.api(token).create_experiment(name)
        except ApiError as exc:
            return error_text(exc, "create the experiment")
        return f"Experiment {made.id} created."

    show = [who, tokens, experiments]
    login.click(sign_in, [email, password], [studio.token, created]).then(
        describe, [studio.token], show
    )
    use_token.click(with_token, [pasted], [studio.token, created]).then(
        describe, [studio.token], show
    )
    logout.click(lambda: (None, "Signed out."), None, [studio.token, created])
    create.click(new_token, [studio.token, token_name], [created]).then(
        describe, [studio.token], show
    )
    revoke.click(drop_token, [studio.token, revoke_id], [created]).then(
        describe, [studio.token], show
    )
    exp_create.click(new_experiment, [studio.token, exp_name], [created]).then(
        describe, [studio.token], show
    )
    return {"who": who, "describe": describe, "show": show}
