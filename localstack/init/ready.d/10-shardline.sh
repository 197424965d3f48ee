#!/bin/bash
# Runs inside LocalStack when it is ready: the demo stream and the checkpoint table that
# examples/ use by default. The table layout is checkpoint/dynamodb.CreateTable's: partition
# key "pk" and sort key "sk", both strings, on-demand billing (a test in localstack/ parses the
# create-table arguments below and compares them with the input CreateTable sends).
# A resource that exists is left alone; any other failure fails the script, which LocalStack
# reports as ERROR at /_localstack/init/ready and docker-compose.yml's healthcheck as unhealthy.
set -euo pipefail
awslocal kinesis describe-stream-summary --stream-name shardline-demo >/dev/null 2>&1 ||
  awslocal kinesis create-stream --stream-name shardline-demo --shard-count 4
awslocal kinesis wait stream-exists --stream-name shardline-demo
awslocal dynamodb describe-table --table-name shardline-checkpoints >/dev/null 2>&1 ||
  awslocal dynamodb create-table --table-name shardline-checkpoints \
    --attribute-definitions AttributeName=pk,AttributeType=S AttributeName=sk,AttributeType=S \
    --key-schema AttributeName=pk,KeyType=HASH AttributeName=sk,KeyType=RANGE \
    --billing-mode PAY_PER_REQUEST >/dev/null
awslocal dynamodb wait table-exists --table-name shardline-checkpoints
echo "shardline: demo stream and checkpoint table ready"
