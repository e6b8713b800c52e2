// The chat's echo for the WebSocket bench's peer: `$default` posts the message back to its sender
// through @connections (as examples/chat's `chat` does), `whoami` posts {"connectionId": …}.
"use strict";

const {
  ApiGatewayManagementApiClient,
  PostToConnectionCommand,
} = require("@aws-sdk/client-apigatewaymanagementapi");

// Built once per worker, like the chat's SDK client; the emulator does not check credentials.
const client = new ApiGatewayManagementApiClient({
  endpoint: process.env.WS_ENDPOINT,
  region: "us-east-1",
  credentials: { accessKeyId: "local", secretAccessKey: "local" },
});

async function post(connectionId, data) {
  await client.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: data }));
}

exports.chat = async (event) => {
  const { connectionId, routeKey } = event.requestContext;
  if (routeKey === "$default") {
    await post(connectionId, event.body);
  } else if (routeKey === "whoami") {
    await post(connectionId, JSON.stringify({ connectionId }));
  }
  return { statusCode: 200 };
};
