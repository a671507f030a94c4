// Server B's function, for Knative's faas-js-runtime: the same work as the floor (the runtime has
// parsed the CloudEvent and its data), answered 204.
function handle(context, event) {
  const state = event && event.data && event.data.status && event.data.status.containerStatuses && event.data.status.containerStatuses[0] && event.data.status.containerStatuses[0].state;
  return { statusCode: 204, headers: state === undefined ? { "X-State": "none" } : {} };
};

module.exports = { handle };
