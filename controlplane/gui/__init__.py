"""The web GUI's files, served by the API at `/gui` (controlplane/api/gui.py); package data, no Python.

Plain JavaScript modules, one CSS file and an SVG icon, written for this project: no build step, no
third-party code, nothing fetched from the network. `index.html` is the single page; `js/app.js` starts it.
"""
