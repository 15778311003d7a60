"""OpenAI's Responses API (`/v1/responses`): the request schema, the response objects, the store, the routes.

A response is one chat completion of the same engine, in the Responses API's
shapes (openai-python's own `openai.types.responses` models build and validate
them); stored responses (SQLite) let the next request continue the conversation
with `previous_response_id`.
"""
