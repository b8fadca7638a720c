// The live connection: Server-Sent Events from GET /events. The browser's EventSource reconnects by itself
// after a network error (the stream asks for a retry after 1 s); when the server answered with an error
// status (503: too many clients) the browser gives up, so we open a new one after a back-off. Every `hello`
// (the first, and the one after each reconnect, e.g. after a control-plane restart) asks for a full refetch,
// since whatever happened while disconnected was not seen.

const STATES = {
  connecting: "Live updates: connecting",
  connected: "Live updates: connected",
  reconnecting: "Live updates: reconnecting (showing the last data)",
};

export function follow({ onHello, onChanges, indicator, text }) {
  let source = null;
  let backoff = 1000;
  let timer = 0;

  function show(state) {
    indicator.className = `live live-${state}`;
    indicator.dataset.state = state;
    text.textContent = STATES[state];
  }

  function open() {
    show(source ? "reconnecting" : "connecting");
    source = new EventSource("/events");
    source.addEventListener("hello", (event) => {
      backoff = 1000;
      show("connected");
      onHello(JSON.parse(event.data));
    });
    source.addEventListener("changes", (event) => onChanges(JSON.parse(event.data)));
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) {
        source.close();
        clearTimeout(timer);
        timer = setTimeout(open, backoff);
        backoff = Math.min(backoff * 2, 15000);
      }
      show("reconnecting");
    });
  }

  open();
}
