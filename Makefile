# Shortcuts for the two commands of the README.
.PHONY: demo test
demo:
	./scripts/demo
test:
	./scripts/test
