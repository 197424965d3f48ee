#!/bin/bash
# Runs inside LocalStack when it is ready: the demo stream and the checkpoint table that
# examples/ use by default. The table layout is checkpoint/dynamodb.CreateTable's: partition
# key "pk" and sort key "sk", both strings, on-demand billing.
set -euo pipefail
awslocal kinesis create-stream --stream-name shardline-demo --shard-count 4 || true
awslocal kinesis wait stream-exists --stream-name shardline-demo
awslocal dynamodb create-table --table-name shardline-checkpoints \
  --attribute-definitions AttributeName=pk,AttributeType=S AttributeName=sk,AttributeType=S \
  --key-schema AttributeName=pk,KeyType=HASH AttributeName=sk,KeyType=RANGE \
  --billing-mode PAY_PER_REQUEST || true
echo "shardline: demo stream and checkpoint table ready"
