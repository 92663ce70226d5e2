"""Model providers (embedders now; generators later), each registered as a plug-in."""
