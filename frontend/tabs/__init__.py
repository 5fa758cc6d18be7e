"""One module per tab: a function builds the tab's components and returns them in a dict."""
