"""The language model door to understanding: vLLM over its OpenAI API, through LangChain, with guardrails."""
